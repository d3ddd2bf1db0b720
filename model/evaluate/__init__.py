"""Evaluation: `nextword evaluate`, quality figures, the n-gram baseline, the noisy typist, personal figures."""
