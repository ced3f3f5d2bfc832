"""Student models on sentence embeddings (linear probe, fine-tuned encoder) and out-of-fold fits."""

from labelmill.strategies.students.models import LinearStudent, out_of_fold, self_trained, surest_rows

__all__ = ["LinearStudent", "out_of_fold", "self_trained", "surest_rows"]
