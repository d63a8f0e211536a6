"""RSafe training pipeline."""
