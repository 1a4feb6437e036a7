"""scikit-learn's estimator protocol without importing scikit-learn.

The estimators keep scikit-learn's conventions (``__init__`` stores its arguments
as given, fitted state ends in ``_``, ``fit`` returns ``self``), so ``clone``,
``GridSearchCV`` and ``cross_val_score`` work on them. What those need of an
estimator is small: ``get_params``, ``set_params`` and, since scikit-learn 1.6,
its tags. Inheriting ``sklearn.base.BaseEstimator`` for it would make every
prediction pay for importing scikit-learn (about a second, and SciPy with it);
here it costs nothing until scikit-learn itself asks for the tags.
"""
import inspect


class Parameters:
    """``get_params``, ``set_params``, a repr of the parameters changed from their defaults,
    and scikit-learn's tags (those of ``BaseEstimator``)."""

    @classmethod
    def _parameters(cls):
        """The ``__init__`` parameters, ``{name: default}``, in order."""
        return {name: parameter.default for name, parameter in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)}

    def get_params(self, deep=True):
        """The parameters as ``__init__`` stored them (``deep`` is accepted for scikit-learn:
        no parameter here is itself an estimator)."""
        return {name: getattr(self, name) for name in self._parameters()}

    def set_params(self, **params):
        """Set parameters by name; returns ``self``. ValueError for a name ``__init__`` does not take."""
        names = self._parameters()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"invalid parameters {unknown} for {type(self).__name__}; valid: {list(names)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = [f"{name}={value!r}" for name, value in self.get_params().items()
                   if not _same(value, self._parameters()[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags          # only scikit-learn calls this
        return Tags(estimator_type=None, target_tags=TargetTags(required=False), transformer_tags=None,
                    regressor_tags=None, classifier_tags=None)


def _same(value, default):
    try:
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):          # arrays and other values without one truth
        return value is default
