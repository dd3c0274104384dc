"""The reference side of the comparisons: models built with transformers and SpeechBrain in their
published layouts, the committed SpeechBrain fixtures, the published architectures' sizes, and
test signals. Shared by tests/ and benchmarks/ (run from the repository root); not installed.
"""
