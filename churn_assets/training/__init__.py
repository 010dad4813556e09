"""Training layer: a FLAML-tuned LightGBM model, tracked and registered in MLflow."""
