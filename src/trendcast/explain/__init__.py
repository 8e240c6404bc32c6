"""Explanations: why a model predicts Down, Neutral or Up for one window, and which features matter overall.

    explain_window / explain_sample   one prediction -> Explanation (top features, attention, sentence, to_dict())
    attribute                         the per-model attribution method (IG for the Bi-LSTM, TreeExplainer, linear)
    background_from_training          the scaled training windows IG integrates from; save/load beside the model
    global_importance                 mean |attribution| per feature (and group) over a test fold
    save_explanation_plots            waterfall, attention, importance bars, beeswarm as PNG files

`trendcast.explain.commands.explain` is the `trendcast explain` command.
"""

from trendcast.explain.attention_weights import AttentionStep, attention_matrix, attention_steps, recent_share
from trendcast.explain.explanation import (
    Explanation,
    FeatureContribution,
    build_sentence,
    display_value,
    explain_sample,
    explain_window,
)
from trendcast.explain.importance import (
    GLOBAL_IG,
    SampleAttributions,
    compute_attributions,
    global_importance,
    group_importance,
    importance_metrics,
    importance_table,
)
from trendcast.explain.plots import (
    plot_attention,
    plot_beeswarm,
    plot_explanation,
    plot_importance,
    plot_waterfall,
    save_explanation_plots,
)
from trendcast.explain.shap_values import (
    BACKGROUND_FILE,
    AttributionBatch,
    IGConfig,
    attribute,
    background_from_training,
    load_background,
    save_background,
)

__all__ = [
    "BACKGROUND_FILE",
    "GLOBAL_IG",
    "AttentionStep",
    "AttributionBatch",
    "Explanation",
    "FeatureContribution",
    "IGConfig",
    "SampleAttributions",
    "attention_matrix",
    "attention_steps",
    "attribute",
    "background_from_training",
    "build_sentence",
    "compute_attributions",
    "display_value",
    "explain_sample",
    "explain_window",
    "global_importance",
    "group_importance",
    "importance_metrics",
    "importance_table",
    "load_background",
    "plot_attention",
    "plot_beeswarm",
    "plot_explanation",
    "plot_importance",
    "plot_waterfall",
    "recent_share",
    "save_background",
    "save_explanation_plots",
]
