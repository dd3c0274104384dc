"""Audio constants shared by both model families."""

SAMPLE_RATE = 16000  # Hz: every supported checkpoint was trained on 16 kHz audio
