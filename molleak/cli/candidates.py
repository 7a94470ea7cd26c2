"""`molleak candidates`: enumerate a vocabulary's one- or two-step candidate pool to a file."""

from __future__ import annotations

import argparse

from molleak.cli.common import output_file, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "candidates",
        help="enumerate the one- or two-step candidate pool of a vocabulary",
        description="Enumerate every (template, actions) record of a vocabulary, streaming to a pool file "
                    "(.tsv, or .tsv.gz); prints records, unique molecules and rejects.",
    )
    p.add_argument("--vocab", required=True, help="vocabulary directory (from `molleak vocab` or your own)")
    p.add_argument("--steps", type=int, choices=(1, 2), default=1, help="motifs per candidate (default: 1)")
    p.add_argument("--templates", type=int, nargs="+", metavar="IDX", default=None,
                   help="template indices to enumerate (default: all)")
    p.add_argument("--out", required=True, type=output_file, help="pool file to write (.tsv or .tsv.gz)")
    p.add_argument("--first-record-only", action="store_true",
                   help="keep only the first record of each molecule (default: every record)")
    p.add_argument("--verify", action="store_true",
                   help="also rebuild every record with attach + finalize and count disagreements (slow)")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all usable cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.candidates.enumerate import write_enumeration
    from molleak.candidates.vocab import Vocabulary
    from molleak.errors import InputFileError

    try:
        vocab = Vocabulary.load(args.vocab)
    except UnicodeDecodeError:  # a vocabulary file that is binary (vocab.py reads them as UTF-8 text)
        raise InputFileError(f"vocabulary {args.vocab} holds a file that is not UTF-8 text "
                             "(templates.smi, motifs.smi or vocab.json is binary or corrupt)") from None
    stats = write_enumeration(vocab, args.out, steps=args.steps, templates=args.templates,
                              workers=args.workers, first_record_only=args.first_record_only,
                              verify=args.verify)
    print(f"{args.steps}-step pool of {len(stats.templates)} templates x {len(vocab.motifs)} motifs: "
          f"{stats.summary()}; wrote {stats.records} records to {args.out}")
    return 0
