"""The audit report: `load` (run, bench and attribution files through `molleak.rundir`), `summary`
(the one summary model: headline rows and verdicts), `html` (`molleak report DIR`), with its
`tables`, `figures` and `plots`."""

from molleak.report.html import SECTION_IDS, SECTIONS, ReportSummary, build_report, write_report

__all__ = ["SECTIONS", "SECTION_IDS", "ReportSummary", "build_report", "write_report"]
