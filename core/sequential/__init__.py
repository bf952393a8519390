"""Next-item recommendation: time-ordered histories and the self-attentive network that the
sequential models (recfeat.plugins.models.sequential) train and score with."""
