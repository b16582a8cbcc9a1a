"""AVEL pipeline: data store, models, training and evaluation for audio-visual event localization.

Nothing here reads ``params.yaml`` or touches the file system at import time; stages in
``stages/`` do that and call the functions of this package with explicit arguments.
"""
