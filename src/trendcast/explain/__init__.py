"""Explanations: why a model predicts Down, Neutral or Up for one window, and which features matter overall.

    explain_window / explain_sample   one prediction -> Explanation (top features, attention, sentence, to_dict())
    attribute                         the per-model attribution method (IG for the Bi-LSTM, TreeExplainer, linear)
    background_from_training          the scaled training windows IG integrates from; save/load beside the model
    global_importance                 mean |attribution| per feature (and group) over a test fold
    save_explanation_plots            waterfall, attention, importance bars, beeswarm as PNG files

`trendcast.explain.commands.explain` is the `trendcast explain` command.
"""

from trendcast._lazy import lazy_exports

_EXPORTS = {
    "AttentionStep": "trendcast.explain.attention_weights",
    "AttributionBatch": "trendcast.explain.shap_values",
    "BACKGROUND_FILE": "trendcast.explain.shap_values",
    "Explanation": "trendcast.explain.explanation",
    "FeatureContribution": "trendcast.explain.explanation",
    "GLOBAL_IG": "trendcast.explain.importance",
    "IGConfig": "trendcast.explain.shap_values",
    "SampleAttributions": "trendcast.explain.importance",
    "attention_matrix": "trendcast.explain.attention_weights",
    "attention_steps": "trendcast.explain.attention_weights",
    "attribute": "trendcast.explain.shap_values",
    "background_from_training": "trendcast.explain.shap_values",
    "build_sentence": "trendcast.explain.explanation",
    "compute_attributions": "trendcast.explain.importance",
    "display_value": "trendcast.explain.explanation",
    "explain_sample": "trendcast.explain.explanation",
    "explain_window": "trendcast.explain.explanation",
    "global_importance": "trendcast.explain.importance",
    "group_importance": "trendcast.explain.importance",
    "importance_metrics": "trendcast.explain.importance",
    "importance_table": "trendcast.explain.importance",
    "load_background": "trendcast.explain.shap_values",
    "plot_attention": "trendcast.explain.plots",
    "plot_beeswarm": "trendcast.explain.plots",
    "plot_explanation": "trendcast.explain.plots",
    "plot_importance": "trendcast.explain.plots",
    "plot_waterfall": "trendcast.explain.plots",
    "recent_share": "trendcast.explain.attention_weights",
    "save_background": "trendcast.explain.shap_values",
    "save_explanation_plots": "trendcast.explain.plots",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
