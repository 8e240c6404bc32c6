"""Direction models behind one contract: the Bi-LSTM with attention and the baselines that keep it honest."""
