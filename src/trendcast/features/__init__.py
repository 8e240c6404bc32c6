"""Features: the TA-Lib indicator catalog, labels, windows and leak-proof scaling."""
