"""``python -m cellcensus.holder.disclosure.attacks``: print the attack figures."""

from cellcensus.holder.disclosure.attacks.report import main

main()
