"""HTTP routes, one module per concern: health and metrics, predictions, model info, tickers, admin."""
