"""Stage 1, the gate: autoencoder reconstruction error -> anomaly map and score."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np
import onnxruntime as ort

from .errors import InspectionError, ManifestError
from .manifest import CELL_CENTRES, NORMALISATIONS, VIEWS, FrameTerm, ResidualDetector
from .preprocess import FrameGeometry, PreprocessSpec, model_input

# The gate graph's output names (export/__main__.py writes them, the manifest lists them).
MAP_OUTPUT, STEM_OUTPUT, FRAME_OUTPUT, RESIDUAL_OUTPUT = "error_map", "stem", "frame_error", "residual_map"


@dataclass(frozen=True)
class GateCells:
    """The gate graph's raw outputs for a batch of equally sized padded frames."""

    cells: np.ndarray  # N x h x w error cells at the feature stride
    stem: np.ndarray | None  # N x h' x w' x C backbone features (classifier input), where the graph has them
    frame_errors: np.ndarray | None  # N frame-level reconstruction errors, where the graph has that branch
    residual: np.ndarray | None = None  # N x h x w residual-detector cells, where the graph has that output

    def frame_error(self, index: int) -> float | None:
        return None if self.frame_errors is None else float(self.frame_errors[index])

    def residual_cells(self, index: int) -> np.ndarray | None:
        return None if self.residual is None else self.residual[index]


@dataclass(frozen=True)
class GateOutput:
    """What the gate hands on for one frame."""

    anomaly_map: np.ndarray  # HxW float32, frame coordinates
    score: float  # maximum of the map
    stem: np.ndarray | None  # h x w x C backbone features over the padded frame (classifier input)
    geometry: FrameGeometry
    frame_term: float | None = None  # the frame-level autoencoder's share of the score (added to every cell)
    views: int = 1  # how many views of the frame were scored (3: with its mirror images)


class AnomalyScorer:
    """Runs the exported autoencoder graph (backbone + autoencoder + error map) over a whole frame.

    The graph is fully convolutional; the frame is reflect-padded (``pad_margin`` pixels at
    least, up to a multiple of the backbone's stride), the stride-``feature_stride`` error map is smoothed with a Gaussian
    (``sigma`` in map cells), upsampled and cropped back to frame coordinates. The anomaly
    score is the maximum of that map. ``ignore_border`` (a fraction of the frame per side)
    zeroes the outer band of the map for profiles whose frames show part edges there.

    ``normalise="frame_mean"`` divides the map by its own mean over the scored area, so the
    score reads "times this frame's typical reconstruction error". That factors out how well
    the frame's texture as a whole is reconstructed (steel strips differ in tone and grain
    from coil to coil) and leaves local departures; a defect that covers most of the frame
    raises its own baseline and scores lower. ``"frame_median"`` divides by the median
    instead, which such a defect moves only once it covers half the frame. Chosen per
    profile on the validation split (``python -m studies.score_options``).

    ``level_cap``: the most a normalised map is divided by. A frame whose own error level is beyond
    anything normal steel shows (a foreign object over much of the frame, a frame that is not strip)
    would otherwise divide its own deviation away and read as ordinary; capped, its peak keeps
    counting. Set above the levels of normal frames, it leaves their scores as they were
    (``python -m studies.level_cap_study``).

    ``level_power``: the (capped) level is raised to this power before it divides the map. 1 reads
    "times this frame's typical error"; above 1 a frame whose whole texture is off (a higher level)
    is held back further against one whose peak stands out from a well-rebuilt texture. Chosen on
    the validation split (``python -m studies.level_power_study``).

    ``frame_term``: for a graph with a frame-level autoencoder (output ``frame_error``), the map
    becomes map / map_reference + weight * frame_error / frame_reference over the scored area (see
    ``FrameTerm``). The score stays the map's maximum, the peak stays where the cells put it,
    and a defect that changes the whole frame's texture lifts the whole map.

    ``views=3``: the graph also runs on the padded frame's left-right and top-bottom mirror images,
    their error cells are mirrored back and the three are averaged before anything else. The
    backbone's features are not mirror-symmetric, so the views err differently on normal texture
    and the average is steadier; it costs three runs of the graph (the stem stays the frame's own).
    With a frame-level term, its error is averaged over the three views as well.
    ``views_from``: the mirror views run only on a frame whose one-view score reaches it (a cascade:
    most normal frames are scored once); the score is then the three-view one, else the one-view one.
    None: on every frame. Not combined with a frame-level term.

    ``residual_detector``: for a graph with a residual detector (output ``residual_map``: per cell,
    the probability that the bottleneck's residual, read with its cell where the detector was trained
    so, is a defect's, see ``ResidualDetector``), its
    map is smoothed and placed like the error map, scaled into the gate map's units, and each pixel
    of the map is the larger of the two. The reconstruction error finds what the bottleneck cannot
    rebuild; the detector reads *how* a cell departs from its reconstruction, which catches faint
    departures a plain squared error averages away (docs/gate_design.md, steps 10 and 11).
    """

    def __init__(self, session: ort.InferenceSession, spec: PreprocessSpec, feature_stride: int,
                 input_multiple: int, sigma: float, ignore_border: float = 0.0, pad_margin: int = 0,
                 normalise: str = "none", cell_centre: str = "middle", frame_term: FrameTerm | None = None,
                 level_cap: float | None = None, level_power: float = 1.0, views: int = 1,
                 views_from: float | None = None, residual_detector: ResidualDetector | None = None) -> None:
        if normalise not in NORMALISATIONS:
            raise ValueError(f"unknown anomaly-map normalisation {normalise!r}; expected one of {NORMALISATIONS}")
        if cell_centre not in CELL_CENTRES:
            raise ValueError(f"unknown map cell centre {cell_centre!r}; expected one of {CELL_CENTRES}")
        self._views, self._views_from = _valid_views(views), views_from
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = [output.name for output in session.get_outputs()]
        self._frame_term = self._checked(frame_term)
        self._residual_detector = self._checked_detector(residual_detector)
        self._spec = spec
        self._stride = feature_stride
        self._multiple = input_multiple
        self._sigma = sigma
        self._ignore_border = ignore_border
        self._pad_margin = pad_margin
        self._normalise = normalise
        self._cell_centre = cell_centre
        self._level_cap = level_cap
        self._level_power = level_power

    @classmethod
    def for_profile(cls, session, config) -> "AnomalyScorer":
        """The scorer a manifest profile (``manifest.ProfileConfig``) describes, around any session."""
        return cls(session, config.preprocess, config.feature_stride, config.input_multiple, config.score_sigma,
                   config.ignore_border, config.pad_margin, config.score_normalise, config.score_cell_centre,
                   config.frame_term, config.score_level_cap, config.score_level_power, config.score_views,
                   config.score_views_from, config.residual_detector)

    @property
    def frame_term(self) -> FrameTerm | None:
        return self._frame_term

    @property
    def views_from(self) -> float | None:
        return self._views_from

    @property
    def residual_detector(self) -> ResidualDetector | None:
        return self._residual_detector

    def with_frame_term(self, frame_term: FrameTerm | None) -> "AnomalyScorer":
        """The same scorer (session and scoring) with another frame-level term."""
        twin = copy.copy(self)
        twin._frame_term = self._checked(frame_term)
        return twin

    def with_residual_detector(self, detector: ResidualDetector | None) -> "AnomalyScorer":
        """The same scorer with another residual detector (None: the error map alone)."""
        twin = copy.copy(self)
        twin._residual_detector = self._checked_detector(detector)
        return twin

    def with_views(self, views: int, views_from: float | None = None) -> "AnomalyScorer":
        """The same scorer scoring ``views`` views (from ``views_from``, see the class docstring)."""
        twin = copy.copy(self)
        twin._views, twin._views_from = _valid_views(views), views_from
        twin._checked(twin._frame_term)
        return twin

    def _checked(self, frame_term: FrameTerm | None) -> FrameTerm | None:
        if frame_term is not None and FRAME_OUTPUT not in self._outputs:
            raise ManifestError(f"the profile adds a frame-level term, but the anomaly model has no "
                                f"'{FRAME_OUTPUT}' output (outputs: {', '.join(self._outputs)})")
        if frame_term is not None and self._views_from is not None:
            raise ManifestError("mirror views from a band and a frame-level term together are not supported: the "
                                "band would be set on scores that include the term it is measured with")
        return frame_term

    def _checked_detector(self, detector: ResidualDetector | None) -> ResidualDetector | None:
        if detector is not None and RESIDUAL_OUTPUT not in self._outputs:
            raise ManifestError(f"the profile scores a residual detector, but the anomaly model has no "
                                f"'{RESIDUAL_OUTPUT}' output (outputs: {', '.join(self._outputs)})")
        return detector

    def model_input(self, frame: np.ndarray) -> tuple[np.ndarray, FrameGeometry]:
        """(1xHxW padded batch, geometry) for a [0, 1] gray frame."""
        padded, geometry = model_input(frame, self._spec, self._multiple, self._pad_margin)
        return padded[None], geometry

    def run_model(self, frames: np.ndarray) -> GateCells:
        """The graph's outputs, by name, for equally sized padded frames (N x H x W).

        The stem (output ``stem``) is the frozen backbone features the classifier head
        continues from, so a flagged frame does not run the backbone twice."""
        outputs = dict(zip(self._outputs, self._session.run(None, {self._input: frames[:, :, :, None]})))
        cells, residual = outputs[MAP_OUTPUT], outputs.get(RESIDUAL_OUTPUT)
        frame_errors = outputs.get(FRAME_OUTPUT)
        return GateCells(cells[..., 0] if cells.ndim == 4 else cells, outputs.get(STEM_OUTPUT),
                         None if frame_errors is None else frame_errors.reshape(len(frames)),
                         None if residual is None else residual.reshape(residual.shape[:3]))

    def run(self, frame: np.ndarray) -> GateOutput:
        """Anomaly map, score and backbone stem of one [0, 1] gray frame."""
        batch, geometry = self.model_input(frame)
        raw, anomaly_map, views = self._scored_cells(batch, geometry)
        return GateOutput(anomaly_map, float(anomaly_map.max()), None if raw.stem is None else raw.stem[0], geometry,
                          self.frame_share(raw.frame_error(0)), views)

    def map_parts(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(the error map, the residual detector's scaled map or None) of one [0, 1] gray frame, in the views
        ``run`` scores it in: the two maps whose pixel-wise maximum is ``run``'s map, for readings that treat
        them apart (the error map is divided by a level, the detector's map never is)."""
        batch, geometry = self.model_input(frame)
        raw, _, _ = self._scored_cells(batch, geometry)
        return self._maps_from_cells(raw.cells[0], geometry, raw.frame_error(0), raw.residual_cells(0))

    def _scored_cells(self, batch: np.ndarray, geometry: FrameGeometry) -> tuple[GateCells, np.ndarray, int]:
        """(the graph's outputs for one padded frame in the views it is scored in, its map, how many views):
        three views where the scorer has them, from the band up where it has one."""
        raw = self.run_model(batch)
        anomaly_map = self.map_from_cells(raw.cells[0], geometry, raw.frame_error(0), raw.residual_cells(0))
        if self._views == 3 and (self._views_from is None or anomaly_map.max() >= self._views_from):
            raw = self._with_mirror_views(batch, raw)
            return raw, self.map_from_cells(raw.cells[0], geometry, raw.frame_error(0), raw.residual_cells(0)), 3
        return raw, anomaly_map, 1

    def viewed_cells(self, batch: np.ndarray) -> GateCells:
        """``run_model`` over one padded frame (1 x H x W) in the scorer's views, on every frame (no band)."""
        raw = self.run_model(batch)
        return raw if self._views == 1 else self._with_mirror_views(batch, raw)

    def _with_mirror_views(self, batch: np.ndarray, raw: GateCells) -> GateCells:
        """``raw`` (the graph's outputs for one padded frame) with its error cells, and its frame-level error
        where it has one, averaged with those of the frame's left-right and top-bottom mirror images
        (cells mirrored back); the stem stays the frame's."""
        left_right = self.run_model(np.ascontiguousarray(batch[:, :, ::-1]))
        top_bottom = self.run_model(np.ascontiguousarray(batch[:, ::-1]))
        cells = _mean_of_views(raw.cells, left_right.cells, top_bottom.cells)
        errors = None if raw.frame_errors is None \
            else (raw.frame_errors + left_right.frame_errors + top_bottom.frame_errors) / 3.0
        residual = None if raw.residual is None \
            else _mean_of_views(raw.residual, left_right.residual, top_bottom.residual)
        return GateCells(cells, raw.stem, errors, residual)

    def anomaly_map(self, frame: np.ndarray) -> np.ndarray:
        """float32 HxW map in frame coordinates for a [0, 1] gray frame."""
        return self.run(frame).anomaly_map

    def map_from_cells(self, cells: np.ndarray, geometry: FrameGeometry, frame_error: float | None = None,
                       residual: np.ndarray | None = None) -> np.ndarray:
        """Smooth the stride-level error cells and bring them back to frame coordinates; add the frame
        term where the profile has one (``frame_error``: the graph's ``frame_error`` for this frame); take
        the larger of that and the scaled residual-detector map where the profile has one (``residual``:
        the graph's ``residual_map`` cells for this frame)."""
        error, detector = self._maps_from_cells(cells, geometry, frame_error, residual)
        return error if detector is None else join_maps(error, detector)

    def _maps_from_cells(self, cells: np.ndarray, geometry: FrameGeometry, frame_error: float | None,
                         residual: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """(the error map, the residual detector's scaled map or None) that ``map_from_cells`` joins; both zero
        outside the scored area."""
        area = self.scored_area(geometry.frame_shape)
        scored = self._placed(cells, geometry, self._sigma)[area]
        error = np.zeros(geometry.frame_shape, np.float32)
        error[area] = self._with_frame_term(scored / self.normalising_level(scored), frame_error)
        detector = self._residual_detector
        if detector is None:
            return error, None
        if residual is None:
            raise InspectionError("the profile scores a residual detector, but no residual cells were given")
        return error, detector.scale * self.residual_map_from_cells(residual, geometry, detector.sigma)

    def residual_map_from_cells(self, residual: np.ndarray, geometry: FrameGeometry, sigma: float) -> np.ndarray:
        """The residual detector's own map (``residual``: its cells for one frame), smoothed over ``sigma``
        cells and placed like the error map, unscaled; zero outside the scored area. What the export sets the
        detector's scale on."""
        area = self.scored_area(geometry.frame_shape)
        detector_map = np.zeros(geometry.frame_shape, np.float32)
        detector_map[area] = self._placed(residual, geometry, sigma)[area]
        return detector_map

    def _placed(self, cells: np.ndarray, geometry: FrameGeometry, sigma: float) -> np.ndarray:
        """Stride-level cells smoothed over ``sigma`` cells and brought back to frame coordinates."""
        if cells.shape[0] * self._stride != geometry.padded_shape[0]:
            raise InspectionError(f"the anomaly model's map ({cells.shape[0]} rows) does not match the manifest's "
                                  f"feature_stride {self._stride} for a {geometry.padded_shape[0]}-row input")
        if sigma > 0:
            cells = cv2.GaussianBlur(cells, (0, 0), sigma)
        return geometry.to_frame(cells, self._stride, centre=self._cell_centre)

    def frame_share(self, frame_error: float | None) -> float | None:
        """What the frame-level term adds to every scored cell, in score units (None without one)."""
        if self._frame_term is None:
            return None
        if frame_error is None:
            raise InspectionError("the profile adds a frame-level term, but no frame-level error was given")
        return self._frame_term.weight * frame_error / self._frame_term.frame_reference

    def _with_frame_term(self, scored: np.ndarray, frame_error: float | None) -> np.ndarray:
        if self._frame_term is None:
            return scored
        return scored / self._frame_term.map_reference + self.frame_share(frame_error)

    def scored_area(self, frame_shape: tuple[int, int]) -> tuple[slice, slice]:
        """(rows, cols) of the frame that count towards the score: all but the ``ignore_border`` band."""
        band_y, band_x = int(frame_shape[0] * self._ignore_border), int(frame_shape[1] * self._ignore_border)
        return slice(band_y, frame_shape[0] - band_y), slice(band_x, frame_shape[1] - band_x)

    def normalising_level(self, values: np.ndarray) -> float:
        """What the map over ``values`` is divided by: 1, or its mean or median (``normalise``), at most
        ``level_cap``, raised to ``level_power``."""
        if self._normalise == "none":
            return 1.0
        level = float(np.mean(values) if self._normalise == "frame_mean" else np.median(values))
        if self._level_cap is not None:
            level = min(level, self._level_cap)
        return max(level, 1e-12) ** self._level_power


def join_maps(error: np.ndarray, detector: np.ndarray, power: float | None = None) -> np.ndarray:
    """The gate's map from its two maps, pixel by pixel: their maximum (``power`` None, deployed), or their
    power mean ((e^p + d^p) / 2)^(1/p), which counts a pixel high on both more than one high on either
    alone (measured in ``studies.map_join_study``, docs/gate_design.md, step 19)."""
    if power is None:
        return np.maximum(error, detector)
    error, detector = (np.maximum(m, 0.0).astype(np.float64) for m in (error, detector))
    joined = (error ** power + detector ** power) / 2.0
    return np.power(joined, 1.0 / power).astype(np.float32)


def _mean_of_views(frame: np.ndarray, left_right: np.ndarray, top_bottom: np.ndarray) -> np.ndarray:
    """N x h x w cells of a frame and of its two mirror images, the mirrors' cells mirrored back, averaged."""
    return ((frame + left_right[:, :, ::-1] + top_bottom[:, ::-1]) / 3.0).astype(np.float32)


def _valid_views(views: int) -> int:
    if views not in VIEWS:
        raise ValueError(f"unsupported number of views {views!r}; expected one of {VIEWS}")
    return views


def frame_term_references(scorer: AnomalyScorer, frames: Iterable[np.ndarray], weight: float) -> FrameTerm:
    """A frame-level term (``FrameTerm``) whose references are the median map score and the median
    frame-level error over defect-free ``frames`` ([0, 1] gray), ``scorer`` scoring without the term.
    The export sets them on the validation split; commissioning on the line's own frames."""
    map_scores, frame_errors = [], []
    for frame in frames:
        batch, geometry = scorer.model_input(frame)
        raw = scorer.viewed_cells(batch)
        if raw.frame_errors is None:
            raise ManifestError(f"the anomaly model has no '{FRAME_OUTPUT}' output to set frame-term references on")
        map_scores.append(float(scorer.map_from_cells(raw.cells[0], geometry, residual=raw.residual_cells(0)).max()))
        frame_errors.append(raw.frame_error(0))
    if not map_scores:
        raise ValueError("no defect-free frames to set the frame-term references on")
    return FrameTerm(float(np.median(map_scores)), float(np.median(frame_errors)), weight)
