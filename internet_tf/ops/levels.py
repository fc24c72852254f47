"""The FPN levels (SPEC §1): P2–P6 feed the RPN; P2–P5 carry RoIs (Eq. 6 clamps to [2, 5])."""
RPN_LEVELS = (2, 3, 4, 5, 6)
ROI_LEVELS = (2, 3, 4, 5)
