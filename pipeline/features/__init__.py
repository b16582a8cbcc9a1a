"""Features from raw video: audio front ends, backbone networks, decoding and extraction.

Two recipes (:mod:`pipeline.features.extract`) turn a video into the per-second features of
the AVE store: ``ave``, the AVE release's VGG-19 / VGGish recipe (seed 004 §5.1), and
``seed003``, the log-mel front end and backbone networks of seed 003 (§B, Table 1).
"""
