"""refine: written guidelines that improve from the model's own errors, versioned in the store and read
like a document. This part holds the guideline document and its versions (`labelmill guidelines`)."""
