"""The FPN levels (SPEC §1): the backbone gives C2–C5, the FPN P2–P5 from them plus P6 (a
stride-2 subsample of P5); P2–P6 feed the RPN; P2–P5 carry RoIs (Eq. 6 clamps to [2, 5])."""
PYRAMID_LEVELS = (2, 3, 4, 5)
RPN_LEVELS = PYRAMID_LEVELS + (6,)
ROI_LEVELS = PYRAMID_LEVELS
