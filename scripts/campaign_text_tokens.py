"""How long each campaign's text is for the transformer, against `training.max_text_tokens`.

    spark-submit scripts/campaign_text_tokens.py --as-of 2017-07-01     # after make demo

The text is what training and scoring feed the encoder (``campaign_text``: type, length, coupon
departments and categories), built from silver.campaign_features of the as-of date for every campaign;
it is tokenised by the encoder's own tokenizer without truncation. Prints a Markdown table, one row per
campaign: its tokens, and whether ``training.max_text_tokens`` cuts it (and how much of it is lost), then
the counts that issue 11 asks to measure.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from promo_roi import delta_io
from promo_roi.entrypoint import exit_with, iso_date, job_parser, run_job
from promo_roi.tables import CAMPAIGN_FEATURES
from promo_roi.training.examples import campaign_text


def main(argv: list[str] | None = None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, required=True, help="as-of date of silver.campaign_features")
    args = parser.parse_args(argv)

    def body(spark, config) -> None:
        from transformers import AutoTokenizer

        from promo_roi.training.text_encoder import default_encoder_path

        training = config.require_training().training
        rows = (delta_io.read_table(spark, CAMPAIGN_FEATURES, config.warehouse)
                .filter(F.col("as_of_date") == F.lit(args.as_of))
                .select("campaign_id", "campaign_type", campaign_text().alias("text"))
                .orderBy("campaign_id").collect())
        if not rows:
            raise SystemExit(f"silver.campaign_features has no rows as of {args.as_of}: build the features first")
        tokenizer = AutoTokenizer.from_pretrained(training.encoder_path or default_encoder_path(),
                                                  local_files_only=True)
        limit = training.max_text_tokens
        print(f"| campaign | type | tokens | cut at max_text_tokens = {limit} |")
        print("|---:|---|---:|---|")
        counts = []
        for r in rows:
            tokens = len(tokenizer(r.text, truncation=False)["input_ids"])  # with [CLS] and [SEP]
            counts.append(tokens)
            cut = f"yes, {tokens - limit} tokens lost" if tokens > limit else "no"
            print(f"| {r.campaign_id} | {r.campaign_type} | {tokens} | {cut} |")
        longest = max(counts)
        print(f"\n{sum(c > limit for c in counts)} of {len(counts)} campaign texts are longer than "
              f"max_text_tokens = {limit}; the longest has {longest} tokens (median {sorted(counts)[len(counts) // 2]}); "
              f"the encoder's position limit is {tokenizer.model_max_length}.", flush=True)

    return run_job("campaign_text_tokens", args, body)


if __name__ == "__main__":
    exit_with(main(sys.argv[1:]))
