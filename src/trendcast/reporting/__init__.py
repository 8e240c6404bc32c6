"""Pictures and reports of a backtest: PNG charts (matplotlib, Agg) and one self-contained HTML report.

write_report(result, predictions, out_path, title=, extra_tables=)   the offline HTML report
save_figures(result, predictions, folder)                            PNG files, e.g. for MLflow artifacts
"""

from trendcast.reporting.html import render_report, write_report
from trendcast.reporting.plots import figures, save_figures

__all__ = ["figures", "render_report", "save_figures", "write_report"]
