"""The `encoder_decoder` model: a sequence-to-sequence model warm-started from two pretrained
encoder checkpoints (transformers' EncoderDecoderModel; Rothe et al., "Leveraging Pre-trained
Checkpoints for Sequence Generation"): the decoder is the second encoder with cross-attention
added (new weights) and a language-model head. It makes a generator of any BERT-like checkpoint,
such as the packaged MiniLM offline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tracker.plugin import Annotated, BuildError, Field, data_rules, why_not_loaded
from xp_plugins.checkpoint import Checkpoint, resolve_checkpoint

if TYPE_CHECKING:
    from tracker.plugin import Head

SEQ2SEQ_HEAD = "AutoModelForSeq2SeqLM"


def generates_sequences(options, data):
    head = data.task.head()
    if head.auto_class != SEQ2SEQ_HEAD:
        yield (
            None,
            f"builds a sequence-to-sequence model, but the task ({data.task.describe()}) needs {head.auto_class}",
        )


@data_rules(generates_sequences)
def encoder_decoder(
    head: Head,
    *,
    checkpoint: Annotated[
        Checkpoint, Field(description='the encoder\'s checkpoint: hub id, local folder or "pkg:<package>/<folder>"')
    ],
    decoder: Annotated[
        Checkpoint | None,
        Field(description="the decoder's checkpoint (an encoder, given cross-attention); default: checkpoint's"),
    ] = None,
    tie_encoder_decoder: Annotated[
        bool, Field(description="share the encoder's and decoder's weights (one checkpoint, half the parameters)")
    ] = False,
) -> Any:
    """A sequence-to-sequence model warm-started from two encoders (EncoderDecoderModel).

    `checkpoint` is the encoder; the decoder is `decoder` (default: the same checkpoint) with new
    cross-attention layers. Both read the tokenizer's tokens ([tokenizer] defaults to checkpoint's),
    whose special tokens start ([CLS] or <s>), end ([SEP] or </s>) and pad the generated text.
    Saved, it reloads as any AutoModelForSeq2SeqLM."""
    from transformers import AutoTokenizer, EncoderDecoderModel

    key = "decoder" if decoder is not None else "checkpoint"
    encoder_path = resolve_checkpoint(checkpoint)
    try:
        decoder_path = resolve_checkpoint(decoder or checkpoint)
    except BuildError as error:  # the checkpoint plugin's message, on this key
        raise BuildError(key, error.message) from None
    paths = {"encoder": encoder_path, "decoder": decoder_path}
    try:
        tokens = AutoTokenizer.from_pretrained(paths["decoder"])
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            paths["encoder"], paths["decoder"], tie_encoder_decoder=tie_encoder_decoder
        )
    except (OSError, ValueError) as error:
        given = decoder if key == "decoder" else checkpoint
        raise BuildError(key, f'cannot load "{given}": {why_not_loaded(str(given), error)}') from None
    start = tokens.bos_token_id if tokens.bos_token_id is not None else tokens.cls_token_id
    end = tokens.eos_token_id if tokens.eos_token_id is not None else tokens.sep_token_id
    if start is None or end is None or tokens.pad_token_id is None:
        raise BuildError(
            key,
            "its tokenizer has no start ([CLS] or <s>), end ([SEP] or </s>) or pad token to generate with; "
            "choose a BERT- or RoBERTa-like checkpoint",
        )
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id, config.eos_token_id, config.pad_token_id = start, end, tokens.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    return model
