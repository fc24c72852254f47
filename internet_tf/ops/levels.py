"""The pyramid levels and their strides (Lin et al. 2017; Li et al. 2019, Table 5).

The backbone gives four levels (C2–C5), the neck P2–P5 from them (the FPN, or with
``model.fpn: false`` a 1×1 projection of each) plus P6, a stride-2 subsample of P5; P2–P6
feed the RPN; P2–P5 carry RoIs (Eq. 6 clamps to [2, 5]).

A level's index names its place in the pyramid (the paper's P2–P5), its stride is a property
of the backbone: each level is twice as coarse as the one before, from the first level's
stride — 4 for the ResNets (level l has stride 2**l, ``FPN_STRIDES``), 16 for VGG-16's
SSD-style levels conv7, conv8_2, conv9_2, conv10_2 (``modeling/vgg.py``). Anchors
(``ops/anchors.py``), RoIAlign (``ops/roi_align.py``) and the intertwiner's RoI-size split
read the stride from such a ``{level: stride}`` dict; the intertwiner's generator needs only
that P_{l+1} is half of P_l, which holds for every backbone.
"""
PYRAMID_LEVELS = (2, 3, 4, 5)
RPN_LEVELS = PYRAMID_LEVELS + (6,)
ROI_LEVELS = PYRAMID_LEVELS


def level_strides(first_stride: int = 4) -> dict:
    """``{level: stride}`` for ``RPN_LEVELS``: level 2 has ``first_stride``, each next level twice it."""
    return {l: int(first_stride) * 2 ** (l - PYRAMID_LEVELS[0]) for l in RPN_LEVELS}


FPN_STRIDES = level_strides(4)  # the ResNets (with or without FPN): stride 2**l
