"""Audio-visual video parsing (AVVP, Tian et al. 2020) on LLP: the second task beside AVEL."""
