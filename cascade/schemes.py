"""Landmark schemes: what each point of a shape stands for.

A :class:`Scheme` gives a scheme's points their roles: its name and number of
points, the mirror map (which point each point becomes when the face is
mirrored left to right), named groups (eyes, brows, nose, mouth, jaw), the
curves the points run along (drawing, and the normals of ASM's profiles), the
points that give NME its normalising distances (the outer eye corners; each
eye's points), and the five alignment points (eye centres, nose tip, mouth
corners, as face detectors give them), each the mean of a group of points.

Built in: :data:`IBUG68` (the 68 points of 300-W, Multi-PIE and dlib) and
:data:`FIVE` (the five alignment points themselves). Declare another with
``Scheme(...)`` (WFLW's 98 points, 68 + forehead points...) and
:func:`register` it so that model files naming it load; a subset of a scheme's
points is a scheme too (:meth:`Scheme.subset`). A fitted model stores its
scheme whole, so its file loads without the registration.

Indices are 0-based. Group names say "right" and "left" as 300-W does: the
subject's own right, which appears on the image's left. The five points'
order is the image's: the eye on the image's left, the other eye, the nose
tip, the mouth corner on the image's left, the other one.
"""
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


def _indices(values, n_points, what):
    """``values`` as a tuple of point indices of a scheme of ``n_points``; ValueError otherwise."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        array = np.asarray([None])
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what} must be a non-empty list of point indices, got {values!r}")
    if array.min() < 0 or array.max() >= n_points:
        raise ValueError(f"{what} {array.tolist()} out of range for {n_points} points")
    return tuple(int(i) for i in array)


@dataclass(frozen=True)
class Scheme:
    """A landmark scheme (see the module's docstring). Every index is checked on construction.

    Parameters
    ----------
    name : str, what model files and messages call it
    n_points : the number of points of a shape
    flip : ``n_points`` indices, or None if unknown (then faces cannot be mirrored): in a face
        mirrored left to right, point ``i`` is the original's point ``flip[i]``; an involution
    groups : ``{name: indices}``, named parts
    curves : ``[(indices, closed), ...]``, each an ordered run of points; closed if it loops
    eye_corners : the two outer eye corners (inter-ocular NME), or None
    eyes : two index lists, each eye's points (inter-pupil NME: the distance between their
        means), or None
    five : five index lists whose means are the five alignment points (in the order of the
        module's docstring), or None for a scheme that does not give them
    """

    name: str
    n_points: int
    flip: tuple = None
    groups: dict = field(default_factory=dict)
    curves: tuple = ()
    eye_corners: tuple = None
    eyes: tuple = None
    five: tuple = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a scheme's name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.n_points, (int, np.integer)) or isinstance(self.n_points, bool) \
                or self.n_points < 1:
            raise ValueError(f"n_points must be a positive integer, got {self.n_points!r}")
        n = int(self.n_points)
        set_ = object.__setattr__            # frozen: the checked, normalised values are set once
        set_(self, "n_points", n)
        if self.flip is not None:
            flip = np.array(_indices(self.flip, n, "flip"))
            if len(flip) != n or not np.array_equal(np.sort(flip), np.arange(n)):
                raise ValueError(f"flip must hold each of the {n} point indices exactly once")
            if not np.array_equal(flip[flip], np.arange(n)):
                raise ValueError("flip must be its own inverse (left <-> right pairs)")
            set_(self, "flip", tuple(int(i) for i in flip))
        if not isinstance(self.groups, dict):
            raise ValueError(f"groups must be a dict of name -> indices, got {self.groups!r}")
        set_(self, "groups", {str(k): _indices(v, n, f"group {k!r}") for k, v in self.groups.items()})
        curves = []
        for curve in self.curves:
            if not (isinstance(curve, (tuple, list)) and len(curve) == 2 and isinstance(curve[1], bool)):
                raise ValueError(f"a curve must be (indices, closed), got {curve!r}")
            points = _indices(curve[0], n, "a curve")
            if len(points) < 2 or len(set(points)) != len(points):
                raise ValueError(f"a curve needs two or more distinct points, got {list(points)}")
            curves.append((points, curve[1]))
        set_(self, "curves", tuple(curves))
        if self.eye_corners is not None:
            corners = _indices(self.eye_corners, n, "eye_corners")
            if len(corners) != 2:
                raise ValueError(f"eye_corners must be two indices, got {self.eye_corners!r}")
            set_(self, "eye_corners", corners)
        for name, count in (("eyes", 2), ("five", 5)):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, (tuple, list)) or len(value) != count:
                    raise ValueError(f"{name} must be {count} index lists, got {value!r}")
                set_(self, name, tuple(_indices(v, n, name) for v in value))

    # -- what schemes are used for ----------------------------------------------------

    @property
    def flip_permutation(self):
        """``(n_points,)`` int array of :attr:`flip`; ValueError if the scheme has none."""
        if self.flip is None:
            raise ValueError(f"the {self.name!r} scheme has no mirror map (flip): faces of it cannot be "
                             "mirrored; declare a Scheme with flip=, or fit with mirror=False")
        return np.array(self.flip)

    @property
    def has_five_points(self):
        """Whether the scheme says where a face's five alignment points are (eye centres, nose tip,
        mouth corners), so that a face can start from five points."""
        return self.five is not None

    def five_points(self, shapes):
        """``(..., 5, 2)``: the five alignment points of ``(..., n_points, 2)`` shapes."""
        if self.five is None:
            raise ValueError(f"the {self.name!r} scheme does not give five alignment points (five-point "
                             "starts and alignment need them)")
        shapes = np.asarray(shapes, dtype=np.float64)
        if shapes.shape[-2:] != (self.n_points, 2):
            raise ValueError(f"shapes of the {self.name!r} scheme have {self.n_points} points; "
                             f"got shape {shapes.shape}")
        order, starts, sizes = self._five_groups
        return np.add.reduceat(shapes[..., order, :], starts, axis=-2) / sizes[:, None]

    @cached_property
    def _five_groups(self):
        """The five points' landmark indices end to end, where each group starts, and its size: one
        gather and one sum for all five (a face a call spends microseconds here)."""
        sizes = np.array([len(group) for group in self.five])
        return np.concatenate(self.five), np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes

    def default_normalization(self):
        """The NME normalisation this scheme supports best: inter-ocular, inter-pupil, or box-size."""
        if self.eye_corners is not None:
            return "inter-ocular"
        return "inter-pupil" if self.eyes is not None else "box-size"

    def subset(self, indices, name=None):
        """The scheme of a subset of the points, in the order given (e.g. ``IBUG68.subset(range(17))``
        for the jaw): groups, curves and eyes keep the points kept; the mirror map must map the subset
        onto itself; eye corners and the five points survive if what defines them does."""
        indices = _indices(indices, self.n_points, "subset")
        if len(set(indices)) != len(indices):
            raise ValueError("a subset must not repeat a point")
        new = {old: k for k, old in enumerate(indices)}

        def kept(points):
            return tuple(new[p] for p in points if p in new)

        flip = None
        if self.flip is not None:
            if any(self.flip[p] not in new for p in indices):
                missing = sorted({self.flip[p] for p in indices} - set(indices))
                raise ValueError(f"the subset holds points whose mirror images {missing} it leaves out")
            flip = tuple(new[self.flip[p]] for p in indices)
        groups = {key: kept(group) for key, group in self.groups.items() if kept(group)}
        curves = tuple((kept(points), closed) for points, closed in self.curves if len(kept(points)) >= 2)
        corners = self.eye_corners if self.eye_corners and all(p in new for p in self.eye_corners) else None
        eyes = tuple(kept(eye) for eye in self.eyes) if self.eyes and all(kept(e) for e in self.eyes) else None
        five = tuple(kept(g) for g in self.five) if self.five and all(kept(g) for g in self.five) else None
        return Scheme(name or f"{self.name}[{len(indices)}]", len(indices), flip, groups, curves,
                      None if corners is None else kept(corners), eyes, five)

    # -- model files --------------------------------------------------------------------

    def to_dict(self):
        """The scheme as JSON-ready values, as a model file stores it (:meth:`from_dict` reads them)."""
        return {"name": self.name, "n_points": self.n_points, "flip": None if self.flip is None else list(self.flip),
                "groups": {k: list(v) for k, v in self.groups.items()},
                "curves": [[list(points), closed] for points, closed in self.curves],
                "eye_corners": None if self.eye_corners is None else list(self.eye_corners),
                "eyes": None if self.eyes is None else [list(e) for e in self.eyes],
                "five": None if self.five is None else [list(g) for g in self.five]}

    @classmethod
    def from_dict(cls, values):
        """The scheme of :meth:`to_dict`'s output; ValueError for anything else."""
        fields = set(cls.__dataclass_fields__)
        if not isinstance(values, dict) or set(values) != fields:
            raise ValueError(f"a scheme needs exactly {sorted(fields)}, got {values!r}")
        curves = values["curves"]
        if not isinstance(curves, list) or not all(isinstance(c, list) and len(c) == 2 for c in curves):
            raise ValueError(f"a scheme's curves must be [[indices, closed], ...], got {curves!r}")
        return cls(**{**values, "curves": tuple((points, closed) for points, closed in curves)})


def _ibug68():
    pairs = [(i, 16 - i) for i in range(8)]                                # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]                          # brows
    pairs += [(31, 35), (32, 34)]                                          # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]            # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                                # inner lips
    flip = list(range(68))
    for left, right in pairs:
        flip[left], flip[right] = right, left
    spans = {"jaw": (0, 16, False), "right_brow": (17, 21, False), "left_brow": (22, 26, False),
             "nose_bridge": (27, 30, False), "nostrils": (31, 35, False), "right_eye": (36, 41, True),
             "left_eye": (42, 47, True), "outer_lips": (48, 59, True), "inner_lips": (60, 67, True)}
    groups = {name: tuple(range(first, last + 1)) for name, (first, last, _) in spans.items()}
    return Scheme("ibug68", 68, tuple(flip), groups,
                  curves=tuple((groups[name], closed) for name, (_, _, closed) in spans.items()),
                  eye_corners=(36, 45), eyes=(groups["right_eye"], groups["left_eye"]),
                  five=(groups["right_eye"], groups["left_eye"], (30,), (48,), (54,)))


#: The 68-point iBUG scheme of 300-W (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, lips 48-67).
IBUG68 = _ibug68()
#: The five alignment points: the eye centres, the nose tip and the mouth corners.
FIVE = Scheme("five", 5, (1, 0, 2, 4, 3), {"right_eye": (0,), "left_eye": (1,), "nose_tip": (2,),
                                           "mouth_corners": (3, 4)},
              eyes=((0,), (1,)), five=((0,), (1,), (2,), (3,), (4,)))

#: Schemes by name, for model files that name theirs.
SCHEMES = {scheme.name: scheme for scheme in (IBUG68, FIVE)}


def register(scheme):
    """Make ``scheme`` known by its name (:func:`scheme_of`); a different scheme of that name is refused."""
    if not isinstance(scheme, Scheme):
        raise TypeError(f"register takes a Scheme, got {scheme!r}")
    if SCHEMES.get(scheme.name, scheme) != scheme:
        raise ValueError(f"another scheme is registered as {scheme.name!r}")
    SCHEMES[scheme.name] = scheme
    return scheme


def scheme_of(scheme=None, n_points=None):
    """The :class:`Scheme` a parameter stands for: a Scheme, a registered name, or None for the
    built-in scheme of ``n_points`` points (68: :data:`IBUG68`, 5: :data:`FIVE`; otherwise a plain
    scheme with no roles and no mirror map). With ``n_points``, the scheme must have that many."""
    if scheme is None:
        if n_points is None:
            raise ValueError("no scheme and no number of points to choose one")
        scheme = {68: IBUG68, 5: FIVE}.get(n_points) or Scheme(f"{n_points} points", n_points)
    elif isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}: choose from {sorted(SCHEMES)} or register yours")
        scheme = SCHEMES[scheme]
    elif not isinstance(scheme, Scheme):
        raise TypeError(f"a scheme must be a Scheme, a registered name or None, got {scheme!r}")
    if n_points is not None and scheme.n_points != n_points:
        raise ValueError(f"the {scheme.name!r} scheme has {scheme.n_points} points; these shapes have {n_points}")
    return scheme
