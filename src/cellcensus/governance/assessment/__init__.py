"""The decision tree that assesses the benefits and risks of sharing corporate data.

Questions, answers, weights and rules live in `decision_tree.yaml` (schema:
`decision_tree.schema.yaml`); worked examples of answers files are in `examples/`.
"""

from cellcensus.governance.assessment.answers import Answers, load_answers, parse_answers
from cellcensus.governance.assessment.outcome import assess
from cellcensus.governance.assessment.result import Assessment
from cellcensus.governance.assessment.tree import DecisionTree, load_decision_tree

__all__ = [
    "Answers",
    "Assessment",
    "DecisionTree",
    "assess",
    "load_answers",
    "load_decision_tree",
    "parse_answers",
]
