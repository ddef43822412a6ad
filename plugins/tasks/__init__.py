"""Task plugins: what differs from one fine-tuning task to the next (targets, model head,
predictions, export), each task in its own module."""

from tracker.plugin import hookimpl
from xp_plugins.tasks.instruction_tuning import instruction_tuning
from xp_plugins.tasks.question_answering import question_answering
from xp_plugins.tasks.seq2seq import seq2seq
from xp_plugins.tasks.sequence_classification import sequence_classification
from xp_plugins.tasks.token_classification import token_classification


@hookimpl
def xp_register_tasks(register):
    register("sequence_classification", sequence_classification)
    register("token_classification", token_classification)
    register("question_answering", question_answering)
    register("seq2seq", seq2seq)
    register("instruction_tuning", instruction_tuning)


@hookimpl
def xp_default_task():
    return "sequence_classification"
