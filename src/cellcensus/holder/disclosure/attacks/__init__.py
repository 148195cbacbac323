"""Attacks on released aggregates, run against unprotected and protected releases.

Each module implements one attack from the literature at small scale on synthetic data:
`differencing` (overlapping releases), `trajectory_recovery` (Xu et al., WWW 2017) and
`membership_inference` (Pyrgelis et al., NDSS 2018); `world` runs the last two on the
project's synthetic world (`cellcensus.world`), released as `present_population` is.
`tests/attacks` asserts that each one succeeds on exact aggregates and fails on cellcensus
releases; `report` prints the figures.
"""
