"""How long each household's purchase-history text is for the transformer, by how many categories it names.

    spark-submit scripts/history_text_tokens.py --as-of 2017-07-01 [--weeks 26] [--categories 5,10,20]   # after make demo

The text is :func:`promo_roi.purchase_history.purchase_history_on` over bronze (the household's largest product
categories by spend in the ``--weeks`` weeks before the as-of date, with their shares), built for every
household with spend in that window, for each number of categories, and tokenised by the encoder's own
tokenizer without truncation. Prints a Markdown table (households, median, 90th percentile and longest token
count, and how many texts ``training.max_text_tokens`` and the encoder's 256-token training length would
cut), then one household's texts: what issue 11 asks to measure before the network reads them.
"""

from __future__ import annotations

import sys

from promo_roi.bronze import read_bronze
from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job
from promo_roi.purchase_history import purchase_history_on

# all-MiniLM-L6-v2 was trained on sequences of at most 256 word pieces (its sentence-transformers config);
# its position embeddings reach 512.
TRAINED_LENGTH = 256


def _positive_ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",")]
    if not values or min(values) < 1:
        raise ValueError(f"expected positive integers separated by commas, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, required=True, help="the date the history ends before")
    parser.add_argument("--weeks", type=int, default=26, help="weeks of history before the as-of date")
    parser.add_argument("--categories", type=_positive_ints, default=[5, 10, 20],
                        help="numbers of categories to compare, e.g. 5,10,20")
    args = parser.parse_args(argv)
    if args.weeks < 1:
        parser.error("--weeks must be at least 1")

    def body(spark, config) -> None:
        import numpy as np
        from transformers import AutoTokenizer

        from promo_roi.training.text_encoder import default_encoder_path

        training = config.require_training().training
        tokenizer = AutoTokenizer.from_pretrained(training.encoder_path or default_encoder_path(),
                                                  local_files_only=True)
        bronze = read_bronze(spark, config)
        limit = training.max_text_tokens
        print(f"| categories | households | median tokens | 90th percentile | longest | cut at max_text_tokens = "
              f"{limit} | cut at {TRAINED_LENGTH} |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        examples = {}
        for k in args.categories:
            rows = (purchase_history_on(bronze.transactions, bronze.products, [args.as_of], args.weeks, k)
                    .select("household_id", "history_text").orderBy("household_id").collect())
            if not rows:
                raise SystemExit(f"no household has spend in the {args.weeks} weeks before {args.as_of}")
            tokens = np.array([len(tokenizer(r.history_text, truncation=False)["input_ids"]) for r in rows])
            print(f"| {k} | {len(rows):,} | {np.median(tokens):.0f} | {np.percentile(tokens, 90):.0f} | "
                  f"{tokens.max()} | {(tokens > limit).sum():,} | {(tokens > TRAINED_LENGTH).sum():,} |")
            examples[k] = rows[0]
        for k, row in examples.items():
            print(f"\nhousehold {row.household_id}, {k} categories: {row.history_text}")
        print(flush=True)

    return run_job("history_text_tokens", args, body)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
