"""review: people on the hard rows. A queue ranked by what a review is worth, a local web app, several
annotators with agreement figures, the review -> refit -> relabel loop, and exports."""
