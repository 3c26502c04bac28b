"""The escape stage (DESIGN.md §10c): which escape-time law do the real optimizers follow?

The real update rules (SGD, SGD-M, Adam, AdamW, Adai, AdaiW with the hyperparameters of
``gradnoise.optim.build_optimizer``) run on controlled landscapes (``gradnoise.landscapes``) with
injected gradient noise, many independent paths at once; and from trained networks' minima on the real
data (Nguyen, Şimşekli et al. 2019).

Injected noise, g = ∇f(θ) + u, with Σ = s² H(θ*) / B (s: ``scale``, B: ``batch_size``):
- Gaussian: u ~ N(0, Σ), the diffusion theory's assumption (noise covariance ∝ Hessian / batch size);
- SαS: u = Σ^(1/2) ξ / √2 with ξ unit SαS(α) (``gradnoise.levy``: characteristic function
  exp(−|t|^α), iid coordinates or rotationally invariant). The 1/√2 makes α = 2 the Gaussian case
  exactly (unit S2S is N(0, 2)); along the escape axis u_0 has SαS scale c = σ_0/√2, σ_0² = s²H/B.

Predictions, in iterations, for escape along θ_0 from the minimum of a BarrierWell (profile u, barrier
tops at ±w). Each optimizer enters through its gain P along θ_0, the factor between an injected
gradient perturbation and the displacement it causes (per unit lr) once the momentum has acted:
P = 1 (SGD), 1/(1 − μ) (torch's SGD-M, which adds g without the (1 − μ) factor; Nesterov alike to
leading order), 1 (Adai/AdaiW: m is an EMA, so its gain is 1 whatever β1), 1/(√v̂ + eps) with
√v̂ = σ_0 (Adam/AdamW: v̂ ≈ E g² ≈ σ_0² at the minimum). Weight decay is left out of the predictions.
- Diffusion (Xie et al.): the discrete rule read as the SDE dθ = −P u'(θ) dt + √(2D) dW, dt = η,
  D = η P² σ_0² / 2, temperature T = D/P = η P σ_0² / 2. ``log_tau_diffusion`` is its exact mean
  first-passage time from 0 to ±w, (1/(ηD)) ∫_0^w e^{u(y)/T} ∫_0^y e^{−u(z)/T} dz dy (quadrature);
  ``kramers_exponent`` is its leading order ΔL/T:
      SGD, Adai: 2BΔL/(η s² H);  SGD-M (torch lr η, momentum μ): 2(1 − μ)BΔL/(η s² H);
      Adam (eps ≪ σ_0): 2√B ΔL/(η s √H).
  Which statement this is, and how far it was checked: the theorem texts of Xie, Sato & Sugiyama
  (ICLR 2021, arXiv 2002.03495) and Xie et al. (ICML 2022, arXiv 2006.15815) could not be read here (the
  stored copies give their abstracts only). The abstracts confirm the qualitative content: SGD favours
  flat minima exponentially (white noise only polynomially), escape needs exponentially many iterations
  in B/η, the adaptive learning rate "cannot select flat minima as SGD does", momentum "almost does not
  affect flat minima selection", Adai selects flat minima "as well as SGD". The exponents above are
  derived from the SDE those papers use (noise covariance ηH/(2B) per unit time; Adam's preconditioner
  1/√v̂ with v̂ ≈ H/B); they agree with DESIGN.md §10c's restatement, including its (1 − μ) for torch's
  momentum, and with a later paper's restatement of the framework (a note on FedAdamom, CVPR 2026:
  O(2BΔf/(ηH)), O(2(1 − β)BΔf/(ηH)) for momentum without the (1 − β) on g, O(2√BΔf/(η√H)) for Adam,
  SGD's order for Adai-style adaptive momentum). As recalled, not verified: the ICLR 2021 theorem writes SGD's time as
  (2π/|H_b|) exp[(2BΔL/η)(s_p/H_a + (1 − s_p)/|H_b|)] with a path parameter s_p, because SGD's own noise
  changes along the path; injected noise of fixed covariance Σ does not, so here the exponent is ΔL/T
  with the temperature at the minimum. Fits test the leading order in 1/H (or 1/√H), as §10c says; the
  exact-SDE column also carries the prefactor's dependence on H and w (on the width axis the leading
  order is 0 but the exact SDE is not: the barrier's curvature K changes with w).
- Lévy (Zhou et al.; Imkeller & Pavlyukevich 2006, ``gradnoise.sde.predicted_exit_time_1d``): escape by
  one jump past ±w, E σ ≈ α/(c_α ε^α (a^−α + b^−α)) in SDE time with dt = η and ε = η^(1−1/α) P c
  (DESIGN.md §5: a step's noise η P c ξ is ε dt^(1/α) ξ), so τ ≈ α w^α / (2 c_α (η P c)^α) iterations:
  a power law in the width (exponent α), blind to the height and, through c ∝ √H, ∝ H^(−α/2). For Adam
  v̂ has no finite mean under SαS noise; its prediction takes √v̂ = σ_0 and is therefore right up to a
  constant factor only (``levy_absolute`` False), which leaves its slopes intact.

Fits: least squares of log τ̂ on a regressor (1/H, 1/√H, log H, ΔL, log w), weighted by the
exponential MLE's own variance, Var(log τ̂) ≈ 1/r with r exits (delta method); the slope's interval
uses that variance, inflated by the reduced χ² (and Student's t with n − 2 degrees of freedom) when the
points scatter more than it allows. Each theory's slope is the same regression run on its predicted
log τ at the same design points (unweighted: its interval then only shows the curvature on that axis).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp

from gradnoise.landscapes import BarrierWell
from gradnoise.levy import sample_isotropic_torch, sample_sas_torch
from gradnoise.optim import OPTIMIZERS, build_optimizer
from gradnoise.sde import exponential_mle, predicted_exit_time_1d
from gradnoise.seeds import hash_seed
from gradnoise.train import BatchStream, flat_params

NOISE_KINDS = ("gaussian", "sas")
SAS_MODELS = ("independent", "isotropic")


# ---------------------------------------------------------------------------------------------------
# Vectorized update rules: paths are rows, parameters columns


@dataclass(frozen=True)
class UpdateRule:
    """One optimizer's update applied to θ of shape (paths, d), each row an independent parameter
    vector. ``group`` is the param group that ``build_optimizer`` makes from the same hparams, so the
    defaults and the meaning of every key are the project's."""

    name: str
    group: dict[str, Any]

    def init(self, theta: torch.Tensor) -> dict[str, Any]:
        z = torch.zeros_like
        state: dict[str, Any] = {"t": 0}
        if self.name in ("sgd", "sgdm"):
            state["buf"] = None
        elif self.name in ("adam", "adamw"):
            state.update(m=z(theta), v=z(theta))
        else:
            state.update(m=z(theta), v=z(theta), prod=torch.ones_like(theta))
        return state

    def step(self, theta: torch.Tensor, g: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        """θ after one step with gradients g (same shape); updates ``state`` in place."""
        gr = self.group
        lr, wd = gr["lr"], gr["weight_decay"]
        state["t"] += 1
        t = state["t"]
        if self.name in ("sgd", "sgdm"):
            d = g + wd * theta if wd else g
            mu = gr["momentum"]
            if mu:
                buf = state["buf"]
                state["buf"] = d.clone() if buf is None else mu * buf + d
                d = d + mu * state["buf"] if gr["nesterov"] else state["buf"]
            return theta - lr * d
        if self.name in ("adam", "adamw"):
            beta1, beta2 = gr["betas"]
            decoupled = gr.get("decoupled_weight_decay", self.name == "adamw")
            if wd and decoupled:
                theta = theta * (1 - lr * wd)
            elif wd:
                g = g + wd * theta
            state["m"] = state["m"] + (1 - beta1) * (g - state["m"])
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            denom = state["v"].sqrt() / math.sqrt(1 - beta2**t) + gr["eps"]
            return theta - lr / (1 - beta1**t) * state["m"] / denom
        # Adai: v̄ is the mean of v̂ over the d parameters of one path (paths stay independent)
        beta0, beta2 = gr["betas"]
        if wd and not gr["decoupled"]:
            g = g + wd * theta
        state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
        v_hat = state["v"] / (1 - beta2**t)
        v_bar = v_hat.mean(dim=1, keepdim=True)
        beta1 = (1.0 - beta0 * v_hat / v_bar).clamp(0.0, 1.0 - gr["eps"])
        state["prod"] = state["prod"] * beta1
        state["m"] = beta1 * state["m"] + (1 - beta1) * g
        if wd and gr["decoupled"]:
            theta = theta * (1 - lr * wd)
        return theta - lr * state["m"] / (1 - state["prod"])

    def gain(self, noise_sd: float) -> float:
        """P along a coordinate whose gradient noise has standard deviation ``noise_sd`` (see the
        module docstring)."""
        if self.name == "sgdm":
            return 1.0 / (1.0 - self.group["momentum"])
        if self.name in ("adam", "adamw"):
            return 1.0 / (noise_sd + self.group["eps"])
        return 1.0


def update_rule(name: str, hparams: dict[str, Any]) -> UpdateRule:
    """The vectorized twin of ``build_optimizer(name, ..., hparams)``."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    opt = build_optimizer(name, [torch.zeros(1, requires_grad=True)], hparams)
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    if group.get("maximize") or group.get("amsgrad") or group.get("dampening"):
        raise ValueError(f"{name}: maximize, amsgrad and dampening are not supported here")
    return UpdateRule(name, group)


def select_state(state: dict[str, Any], keep: torch.Tensor) -> dict[str, Any]:
    """The state of the paths in ``keep`` (rows)."""
    return {k: v[keep] if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def default_warmup(rule: UpdateRule) -> int:
    """Iterations that settle the optimizer's statistics before the clock starts: three time
    constants of its slowest average (1/(1 − μ) for SGD-M, 1/(1 − β2) for Adam and Adai)."""
    if rule.name == "sgdm":
        return math.ceil(3 / (1 - rule.group["momentum"]))
    if rule.name == "sgd":
        return 0
    return math.ceil(3 / (1 - rule.group["betas"][1]))


# ---------------------------------------------------------------------------------------------------
# Injected noise


@dataclass(frozen=True)
class InjectedNoise:
    kind: str  # "gaussian" or "sas"
    scale: float = 1.0  # s
    batch_size: float = 1.0  # B
    alpha: float = 2.0  # SαS only
    model: str = "independent"  # SαS only: iid coordinates or rotationally invariant

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}; allowed: {', '.join(NOISE_KINDS)}")
        if self.model not in SAS_MODELS:
            raise ValueError(f"unknown SαS model {self.model!r}; allowed: {', '.join(SAS_MODELS)}")
        if self.kind == "sas" and not 0 < self.alpha <= 2:
            raise ValueError(f"α must lie in (0, 2], got {self.alpha}")

    def scale_matrix(self, hessian: np.ndarray) -> np.ndarray:
        """Σ^(1/2) = s (H(θ*)/B)^(1/2) (symmetric square root)."""
        lam, vec = np.linalg.eigh(np.asarray(hessian, dtype=np.float64))
        if lam.min() < 0:
            raise ValueError("the Hessian at the minimum must be positive semi-definite")
        return self.scale * (vec * np.sqrt(lam / self.batch_size)) @ vec.T

    def escape_sd(self, landscape: BarrierWell) -> float:
        """σ_0 = s √(H/B), the noise's standard deviation (Gaussian) or Σ^(1/2) scale along θ_0."""
        return self.scale * math.sqrt(landscape.sharpness / self.batch_size)

    def sampler(
        self,
        hessian: np.ndarray,
        generator: torch.Generator,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Callable[[int], torch.Tensor]:
        """A function n ↦ n draws of u, shape (n, d)."""
        m = torch.as_tensor(self.scale_matrix(hessian), dtype=dtype, device=device)
        d = m.shape[0]
        diagonal = bool(torch.equal(m, torch.diag(torch.diagonal(m))))
        mix = torch.diagonal(m) if diagonal else m.T

        def draw(n: int) -> torch.Tensor:
            if self.kind == "gaussian":
                z = torch.randn((n, d), generator=generator, device=device, dtype=dtype)
            elif self.model == "isotropic":
                z = sample_isotropic_torch(self.alpha, n, d, generator, device, dtype) / math.sqrt(
                    2
                )
            else:
                z = sample_sas_torch(self.alpha, (n, d), generator, device, dtype) / math.sqrt(2)
            return z * mix if diagonal else z @ mix

        return draw


# ---------------------------------------------------------------------------------------------------
# Escape times on a landscape


class Landscape(Protocol):
    @property
    def dim(self) -> int: ...

    def grad(self, theta: torch.Tensor) -> torch.Tensor: ...

    def exited(self, theta: torch.Tensor) -> torch.Tensor: ...

    def hessian_at_minimum(self) -> np.ndarray: ...


@dataclass(frozen=True)
class EscapeTimes:
    times: np.ndarray  # first iteration past the barrier, per path (max_iters where censored)
    exited: np.ndarray  # False where censored
    max_iters: int
    warmup: int
    mean: float  # exponential MLE Σ min(τ_i, T) / #exits (inf without exits)
    ci_low: float
    ci_high: float
    path_steps: int

    @property
    def n_exits(self) -> int:
        return int(self.exited.sum())


def escape_times(
    landscape: Landscape,
    optimizer: str,
    hparams: dict[str, Any],
    noise: InjectedNoise,
    *,
    n_paths: int,
    max_iters: int,
    seed: int,
    device: str | torch.device = "cpu",
    warmup: int | None = None,
    dtype: torch.dtype = torch.float32,
    compact_every: int = 16,
) -> EscapeTimes:
    """First exit iteration of n_paths independent runs of ``optimizer`` started at θ* = 0.

    Before the clock starts, the optimizer's state is settled by ``warmup`` steps taken with θ held at
    θ* (θ reset after each step; default ``default_warmup``), so that every path arrives at the minimum
    with the statistics of an optimizer that has been there for a while, not with Adam's first steps of
    size lr. Exited paths are frozen and dropped every ``compact_every`` steps; a non-finite θ raises
    FloatingPointError (a NaN never counts as an exit, an overflow never as a first passage)."""
    dev = torch.device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    rule = update_rule(optimizer, hparams)
    draw = noise.sampler(landscape.hessian_at_minimum(), gen, dev, dtype)
    theta_star = torch.zeros((n_paths, landscape.dim), dtype=dtype, device=dev)
    state = rule.init(theta_star)
    warm = default_warmup(rule) if warmup is None else warmup
    for _ in range(warm):
        rule.step(theta_star, landscape.grad(theta_star) + draw(n_paths), state)

    theta = theta_star
    idx = torch.arange(n_paths, device=dev)
    alive = torch.ones(n_paths, dtype=torch.bool, device=dev)
    step_of = torch.zeros(n_paths, dtype=torch.int64, device=dev)
    times = np.full(n_paths, max_iters, dtype=np.int64)
    exited = np.zeros(n_paths, dtype=bool)
    path_steps = 0
    for it in range(1, max_iters + 1):
        n = theta.shape[0]
        new = rule.step(theta, landscape.grad(theta) + draw(n), state)
        newly = alive & landscape.exited(new)
        theta = torch.where(alive[:, None], new, theta)  # exited paths stay where they left
        step_of = torch.where(newly, it, step_of)
        alive = alive & ~newly
        path_steps += n
        if it % compact_every == 0 or it == max_iters:
            if not bool(torch.isfinite(theta).all()):
                raise FloatingPointError(f"{optimizer}: non-finite parameters at iteration {it}")
            dead = ~alive
            if bool(dead.any()):
                gone = idx[dead].cpu().numpy()
                times[gone] = step_of[dead].cpu().numpy()
                exited[gone] = True
                theta, idx, step_of = theta[alive], idx[alive], step_of[alive]
                state = select_state(state, alive)
                alive = alive[alive]
            if theta.shape[0] == 0:
                break
    mean, lo, hi = exponential_mle(times.astype(np.float64), exited)
    return EscapeTimes(times, exited, max_iters, warm, mean, lo, hi, path_steps)


# ---------------------------------------------------------------------------------------------------
# The two theories' predictions


def diffusion_log_tau(landscape: BarrierWell, lr: float, gain: float, noise_sd: float) -> float:
    """log of the exact mean first-passage time (iterations) of dθ = −P u' dt + √(2D) dW from 0 to ±w,
    dt = η = lr, D = η P² σ_0² / 2 (module docstring), by quadrature in log space."""
    big_d = lr * gain**2 * noise_sd**2 / 2
    temp = big_d / gain
    y = np.linspace(0.0, landscape.width, 20001)
    u = np.asarray(landscape.profile(y)) / temp
    dy = y[1] - y[0]
    inner = np.concatenate([[0.0], np.cumsum((np.exp(-u[1:]) + np.exp(-u[:-1])) * dy / 2)])
    with np.errstate(divide="ignore"):
        log_f = u + np.log(inner)
    weights = np.full(len(y), dy)
    weights[[0, -1]] = dy / 2
    return float(logsumexp(log_f, b=weights) - math.log(big_d) - math.log(lr))


def predictions(
    landscape: BarrierWell, optimizer: str, hparams: dict[str, Any], noise: InjectedNoise
) -> dict[str, Any]:
    """Both theories' predictions for one configuration (module docstring): ``log_tau_diffusion``,
    ``kramers_exponent`` (both from Σ, whatever the noise's kind: what the diffusion picture would
    predict at this scale), ``log_tau_levy`` (SαS with α < 2 only, else NaN) and ``levy_absolute``."""
    rule = update_rule(optimizer, hparams)
    lr = rule.group["lr"]
    sd = noise.escape_sd(landscape)
    p = rule.gain(sd)
    levy = math.nan
    if noise.kind == "sas" and noise.alpha < 2:
        eps = lr ** (1 - 1 / noise.alpha) * p * sd / math.sqrt(2)
        w = landscape.width
        levy = math.log(predicted_exit_time_1d(noise.alpha, eps, w, w) / lr)
    return {
        "gain": p,
        "log_tau_diffusion": diffusion_log_tau(landscape, lr, p, sd),
        "kramers_exponent": 2 * landscape.height / (lr * p * sd**2),
        "log_tau_levy": levy,
        "levy_absolute": rule.name not in ("adam", "adamw"),
    }


# ---------------------------------------------------------------------------------------------------
# Sweeps and fits

AXES = ("sharpness", "height", "width")
REGRESSORS: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
    "sharpness": {
        "inv_h": lambda h: 1 / h,
        "inv_sqrt_h": lambda h: 1 / np.sqrt(h),
        "log_h": np.log,
    },
    "height": {"height": lambda x: x},
    "width": {"log_width": np.log},
}


def sweep(axis: str, values: Sequence[float], base: BarrierWell) -> list[BarrierWell]:
    """``base`` with one of sharpness, height or width set to each value, the others fixed."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; allowed: {', '.join(AXES)}")
    return [dataclasses.replace(base, **{axis: float(v)}) for v in values]


def escape_sweep(
    axis: str,
    values: Sequence[float],
    base: BarrierWell,
    optimizer: str,
    hparams: dict[str, Any],
    noise: InjectedNoise,
    *,
    n_paths: int,
    max_iters: int,
    seed: int,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, Any]]:
    """One row per landscape of the sweep: measured escape time and both theories' predictions. Each
    configuration draws from its own stream (seed hashed with the configuration)."""
    rows = []
    for land in sweep(axis, values, base):
        key = (axis, land.sharpness, land.height, land.width, optimizer, noise.kind, noise.alpha)
        ex = escape_times(
            land,
            optimizer,
            hparams,
            noise,
            n_paths=n_paths,
            max_iters=max_iters,
            seed=hash_seed(seed, *key),
            device=device,
            dtype=dtype,
        )
        rows.append(
            {
                "axis": axis,
                "optimizer": optimizer,
                "lr": float(hparams["lr"]),
                "noise": noise.kind,
                "alpha": noise.alpha if noise.kind == "sas" else 2.0,
                "noise_model": noise.model if noise.kind == "sas" else "gaussian",
                "scale": noise.scale,
                "batch_size": noise.batch_size,
                "sharpness": land.sharpness,
                "height": land.height,
                "width": land.width,
                "dim": land.dim,
                "n_paths": n_paths,
                "n_exits": ex.n_exits,
                "max_iters": max_iters,
                "warmup": ex.warmup,
                "mean_exit": ex.mean,
                "ci_low": ex.ci_low,
                "ci_high": ex.ci_high,
                "path_steps": ex.path_steps,
                **predictions(land, optimizer, hparams, noise),
            }
        )
    return rows


@dataclass(frozen=True)
class LineFit:
    slope: float
    low: float
    high: float
    intercept: float
    n: int
    chi2_red: float  # reduced χ² of the weighted fit (NaN unweighted or n ≤ 2)


def fit_line(
    x: np.ndarray, y: np.ndarray, sd: np.ndarray | None = None, level: float = 0.95
) -> LineFit:
    """Least-squares line y = a + b x. With ``sd``: weights 1/sd², the slope's standard error from
    those variances times max(1, √χ²_red), and a t_{n−2} quantile once inflated (normal otherwise).
    Without: ordinary least squares with the t_{n−2} interval (none for n = 2)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 2:
        return LineFit(math.nan, math.nan, math.nan, math.nan, n, math.nan)
    w = np.ones(n) if sd is None else 1 / np.asarray(sd, float) ** 2
    design = np.stack([np.ones(n), x], axis=1)
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    a, b = cov @ design.T @ (w * y)
    chi2 = float(np.sum(w * (y - a - b * x) ** 2))
    dof = n - 2
    if sd is None:
        if dof == 0:
            return LineFit(float(b), math.nan, math.nan, float(a), n, math.nan)
        se, q = math.sqrt(cov[1, 1] * chi2 / dof), stats.t.ppf((1 + level) / 2, dof)
        return LineFit(float(b), b - q * se, b + q * se, float(a), n, math.nan)
    chi2_red = chi2 / dof if dof else math.nan
    inflate = dof > 0 and chi2_red > 1
    se = math.sqrt(cov[1, 1] * (chi2_red if inflate else 1.0))
    q = stats.t.ppf((1 + level) / 2, dof) if inflate else stats.norm.ppf((1 + level) / 2)
    return LineFit(float(b), b - q * se, b + q * se, float(a), n, chi2_red)


def fit_sweep(rows: Sequence[dict[str, Any]], level: float = 0.95) -> list[dict[str, Any]]:
    """Per regressor of the rows' axis: the measured slope of log τ (rows with exits only) and the
    slopes of the diffusion (exact SDE and leading Kramers order) and Lévy predictions at the same
    design points."""
    if not rows:
        return []
    axis = rows[0]["axis"]
    if any(r["axis"] != axis for r in rows):
        raise ValueError("fit_sweep takes the rows of one sweep")
    ok = [r for r in rows if r["n_exits"] > 0]
    out = []
    for name, regressor in REGRESSORS[axis].items():
        x = regressor(np.array([r[axis] for r in ok], dtype=float))
        measured = fit_line(
            x,
            np.log([r["mean_exit"] for r in ok]),
            1 / np.sqrt([r["n_exits"] for r in ok]),
            level,
        )
        theory = {
            col: fit_line(x, np.array([r[col] for r in ok], dtype=float), None, level).slope
            for col in ("log_tau_diffusion", "kramers_exponent", "log_tau_levy")
        }
        out.append(
            {
                "axis": axis,
                "regressor": name,
                "n_points": measured.n,
                "n_without_exits": len(rows) - len(ok),
                "slope": measured.slope,
                "slope_low": measured.low,
                "slope_high": measured.high,
                "chi2_red": measured.chi2_red,
                "slope_diffusion": theory["log_tau_diffusion"],
                "slope_kramers": theory["kramers_exponent"],
                "slope_levy": theory["log_tau_levy"],
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------
# Escape from a trained network's minimum (Nguyen, Şimşekli et al. 2019)


@dataclass(frozen=True)
class MinimumEscape:
    radii: np.ndarray
    times: np.ndarray  # first iteration with ‖w_t − w*‖ > radius (max_iters where censored)
    exited: np.ndarray
    max_iters: int
    distance: np.ndarray  # ‖w_t − w*‖ after each iteration run


def escape_from_minimum(
    model: torch.nn.Module,
    data_x: torch.Tensor,
    data_y: torch.Tensor,
    optimizer: str,
    hparams: dict[str, Any],
    radii: Sequence[float],
    max_iters: int,
    batch_size: int,
    seed: int,
    optimizer_state: dict[str, Any] | None = None,
) -> MinimumEscape:
    """Continue ``optimizer`` (``build_optimizer`` with ``hparams``; its checkpointed state if given)
    from the model's current weights w* with seeded random minibatches of the data (training mode,
    cross-entropy, as in training) and record, for each radius, the first iteration at which
    ‖w_t − w*‖ > radius; stops once every radius is passed. A non-finite loss raises
    FloatingPointError. The checkpointed state brings its moments (momentum buffer, v, …) but not its
    hyperparameters: torch's ``load_state_dict`` restores the run's lr with them, which ``hparams``
    replace again."""
    radii_arr = np.asarray(sorted(radii), dtype=float)
    w_star = flat_params(model).clone()
    opt = build_optimizer(optimizer, model.parameters(), hparams)
    if optimizer_state is not None:
        settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        opt.load_state_dict(optimizer_state)
        for group, hp in zip(opt.param_groups, settings, strict=True):
            group.update(hp)
    batches = BatchStream(len(data_y), batch_size, seed)
    times = np.full(len(radii_arr), max_iters, dtype=np.int64)
    exited = np.zeros(len(radii_arr), dtype=bool)
    distance = []
    model.train()
    for it in range(1, max_iters + 1):
        idx = batches.next().to(data_x.device)
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(data_x[idx]), data_y[idx])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{optimizer}: loss {loss.item()} at iteration {it}")
        loss.backward()
        opt.step()
        dist = float((flat_params(model) - w_star).norm())
        distance.append(dist)
        newly = ~exited & (dist > radii_arr)
        times[newly] = it
        exited |= newly
        if exited.all():
            break
    return MinimumEscape(radii_arr, times, exited, max_iters, np.asarray(distance))
