"""The sentence-transformers files of a saved retriever, written from its EmbeddingSpec.

With them a model directory loads as `SentenceTransformer(model_dir)`, and
`encode_query` / `encode_document` give the vectors our own encode gives:

- modules.json: Transformer (the weights in the directory itself), Pooling as
  trained (lasttoken / mean / cls), Normalize when the model normalises.
- sentence_bert_config.json: the Transformer reads plain text (no modality
  guessing) and renders it with a chat template of our own, passed to the
  tokenizer at load time (the saved tokenizer keeps its own). The template puts the
  text in the spec's template, appends its tail and EOS, and branches on the task
  (query or document); truncation keeps that tail, since sentence-transformers
  writes a chat template's tail back over a truncated row. Query and document
  max lengths are the spec's.
- config_sentence_transformers.json: the prompts "query" and "document" (the
  spec's prefix + the template's head), used by encode_query / encode_document;
  a multi-task model adds "<task>-query" / "<task>-document".

Nothing here imports sentence_transformers: the files are plain JSON.
"""
import json
import logging
from pathlib import Path

from retriever.io import write_json
from retriever.pooling import get_pooling
from retriever.spec import KINDS, PLACEHOLDER, EmbeddingSpec
from retriever.text import ST_FILLERS, ends_with_eos, special_ends, st_probe_is_blind

logger = logging.getLogger(__name__)
ST_KIND = {"query": "query", "passage": "document"}
HIDDEN_STATES = {"method": "forward", "method_output_name": "last_hidden_state"}


def literal(text: str) -> str:
    """A Jinja expression that prints `text` as is."""
    return "{{- " + json.dumps(text, ensure_ascii=False) + " -}}"


def chat_template(spec: EmbeddingSpec, tokenizer) -> str:
    """[lead specials] prompt + text + the kind's template tail [trail specials, EOS], as in `text.tokenize`."""
    lead, trail = special_ends(tokenizer)
    if spec.append_eos and not ends_with_eos(tokenizer):
        trail = trail + [tokenizer.eos_token_id]
    tails = {kind: getattr(spec, f"{kind}_template").split(PLACEHOLDER)[1] for kind in KINDS}
    specials = lambda ids: literal("".join(tokenizer.convert_ids_to_tokens(ids))) if ids else ""  # noqa: E731
    return (specials(lead)
            + "{%- for message in messages -%}{{- message['content'] -}}{%- endfor -%}"
            + "{%- if task == 'query' -%}" + literal(tails["query"])
            + "{%- else -%}" + literal(tails["passage"]) + "{%- endif -%}"
            + specials(trail))


def prompts(spec: EmbeddingSpec) -> dict[str, str]:
    """The text before {text}, per kind (and per task of a multi-task model)."""
    heads = {kind: getattr(spec, f"{kind}_template").split(PLACEHOLDER)[0] for kind in KINDS}
    out = {ST_KIND[kind]: spec.prefix(kind) + heads[kind] for kind in KINDS}
    for task in spec.task_instructions:
        out.update({f"{task}-{ST_KIND[kind]}": spec.prefix(kind, task) + heads[kind] for kind in KINDS})
    return out


def write_st_files(model_dir, spec: EmbeddingSpec, tokenizer, dim: int) -> None:
    """Write the sentence-transformers files of the model saved in model_dir."""
    model_dir = Path(model_dir)
    if st_probe_is_blind(tokenizer):  # every real vocabulary has digits; a made-up one may not
        logger.warning("%s: sentence-transformers finds a template's tail (and the EOS) by rendering the texts %s, "
                       "which this tokenizer reads as the same token; SentenceTransformer(dir) will give other vectors "
                       "than encode for texts that reach the max length (cut, or exactly at it), whatever the template",
                       model_dir, " and ".join(map(repr, ST_FILLERS)))
    modules = [("", "sentence_transformers.base.modules.transformer.Transformer"),
               ("1_Pooling", "sentence_transformers.sentence_transformer.modules.pooling.Pooling")]
    if spec.normalize:
        modules.append(("2_Normalize", "sentence_transformers.base.modules.normalize.Normalize"))
        (model_dir / "2_Normalize").mkdir(exist_ok=True)
    write_json(model_dir / "modules.json", [{"idx": i, "name": str(i), "path": path, "type": kind}
                                            for i, (path, kind) in enumerate(modules)])
    write_json(model_dir / "sentence_bert_config.json", {
        "transformer_task": "feature-extraction",
        # plain text in, hidden states out; text is turned into one user message for the template
        "modality_config": {"text": HIDDEN_STATES, "message": {**HIDDEN_STATES, "format": "flat"}},
        "module_output_name": "token_embeddings",
        "query_length": spec.query_max_len,
        "document_length": spec.passage_max_len,
        "max_seq_length": spec.passage_max_len,
        "processor_kwargs": {"chat_template": chat_template(spec, tokenizer), "padding_side": spec.padding_side},
    })
    (model_dir / "1_Pooling").mkdir(exist_ok=True)
    write_json(model_dir / "1_Pooling" / "config.json", {
        "embedding_dimension": dim, "pooling_mode": get_pooling(spec.pooling).st_name, "include_prompt": True})
    write_json(model_dir / "config_sentence_transformers.json", {
        "model_type": "SentenceTransformer",
        "prompts": prompts(spec),
        "default_prompt_name": None,
        "similarity_fn_name": "cosine" if spec.normalize else "dot",
    })
