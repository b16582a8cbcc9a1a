"""Augmentation by recombining training segments: DPNet sub-event databases and replicas
(seed 001 §3.4), EDRNet state databases and State-Machine-Based video fusion (seed 002).

Everything here is pure numpy and stores indices (store row, segment), never feature copies.
"""
