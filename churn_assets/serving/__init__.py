"""Real-time scoring over HTTP (``churn-assets serve``): the champion, the online store, FastAPI."""
