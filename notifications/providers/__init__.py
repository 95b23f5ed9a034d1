"""One module per notification provider; only these modules import a provider's SDK."""
