"""The iterative loop on a batch of objects: ER, HIO, RAAR with a modulus projection that
leaves masked and free pixels unconstrained, and periodic shrink-wrap.

Everything here is PyTorch on one device, in the FFT-native (unshifted) layout: callers shift
at the boundaries. On the CPU the modulus step between the two FFTs and the real-space update
are one fused pass each (``kernels``, numba), and 3D transforms run through measured FFTW plans
on fixed buffers where pyFFTW is installed and FFTW is the faster transform (``fftw``).
Elsewhere, or when asked, the modulus step is a chain of torch calls on preallocated buffers,
with magnitudes from the real view (``torch.abs`` on complex is slow on the CPU build), and
ER/HIO/RAAR apply their outside-support rule to the whole box in one pass and overwrite the
support voxels by index (no ``torch.where``).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from reconstruction.phasing import fftw, kernels
from reconstruction.phasing.coherence import PsfModel
from reconstruction.phasing.schedule import Schedule
from reconstruction.phasing.support import ShrinkWrapper
from reconstruction.progress import CancelLike, ProgressCallback, ProgressEvent, check, report

_EPS = 1e-30


def _outside(name: str, beta: float | None) -> tuple[float, float]:
    """(c_psi, c_P) of the outside-support rule c_psi psi + c_P P of ER, HIO and RAAR."""
    if name == "ER":
        return 0.0, 0.0
    if name == "HIO":
        return 1.0, -beta
    return beta, 1.0 - 2.0 * beta  # RAAR


@dataclass
class EngineHistory:
    """Per-iteration records (numpy, shape (n_iterations, B)): chi2, chi2_free, support fraction."""

    chi2: np.ndarray
    chi2_free: np.ndarray
    support_fraction: np.ndarray


class Engine:
    """Run a schedule on a batch of objects (B, *shape) complex64, unshifted layout.

    Parameters
    ----------
    amplitude : (*shape) float32 tensor, sqrt(measured intensity), unshifted layout.
    weight : (*shape) float32 tensor, 1 where the modulus is enforced, 0 at masked/free pixels.
    free : (*shape) float32 tensor, 1 at the free (held-out) pixels, or None.
    support : (B, *shape) float32 tensor of 0/1.
    psi : (B, *shape) complex64 tensor, the starting objects (modified in place).
    fused : use the fused CPU modulus kernel; None = on the CPU whenever numba is available.
    psf : a partial-coherence model (``coherence.PsfModel``, one kernel per run): from
        iteration ``psf.settings.start`` x total on, the modulus step fits |F|² ⊗ K to the data
        and K is refined every ``psf.settings.period`` iterations; None = a coherent model.
    use_fftw : transform with FFTW plans (fused CPU kernels only); None = for 3D data when pyFFTW
        is installed, a plan exists or the run is long enough to measure one, and FFTW was
        measured faster than torch for this box (``fftw``); False = torch's FFT.
    """

    def __init__(
        self,
        amplitude: torch.Tensor,
        weight: torch.Tensor,
        support: torch.Tensor,
        psi: torch.Tensor,
        *,
        free: torch.Tensor | None = None,
        shrinkwrap: ShrinkWrapper | None = None,
        positivity: bool = False,
        free_period: int = 5,
        fused: bool | None = None,
        use_fftw: bool | None = None,
        psf: PsfModel | None = None,
    ) -> None:
        self.shape = tuple(amplitude.shape)
        self.ndim = amplitude.ndim
        self.dims = tuple(range(-self.ndim, 0))
        self.batch = psi.shape[0]
        n_vox = math.prod(self.shape)
        scale = math.sqrt(n_vox)  # unnormalised forward FFT: |fft(psi)| = sqrt(V) |farfield|
        self.w = weight.contiguous()
        self.wa = (weight * amplitude * scale).contiguous()  # (*S)
        self.omw = (1.0 - weight).contiguous()  # (*S): factor 1 where unconstrained
        self.neg_wa = -self.wa
        self.wa2 = float((self.wa.double() ** 2).sum())
        self.free = None if free is None or free.sum() == 0 else free.contiguous()
        if self.free is not None:
            self.fa = (self.free * amplitude * scale).contiguous()
            self.neg_fa = -self.fa
            self.fa2 = float((self.fa.double() ** 2).sum())
        self.support = support.contiguous()
        self.psi = psi.contiguous()
        self.P = torch.zeros_like(self.psi)
        self.sq = torch.empty_like(torch.view_as_real(self.psi))
        self.m2 = torch.empty(self.psi.shape, dtype=torch.float32, device=self.psi.device)
        self.mag = torch.empty_like(self.m2)
        self._index_for = None  # the support tensor the flat index below was built from
        self._u8_for = None  # the support tensor the uint8 copy below was built from
        self.shrinkwrap = shrinkwrap
        self.positivity = positivity
        self.free_period = max(1, int(free_period))
        on_cpu = self.psi.device.type == "cpu"
        self.fused = (on_cpu and kernels.available()) if fused is None else bool(fused)
        if self.fused and not (on_cpu and kernels.available()):
            raise ValueError("the fused modulus kernel runs on the CPU only, with numba")
        if not self.fused:
            # the modulus factor as a complex buffer with zero imaginary part: multiplying F by
            # a float tensor would cast it to complex (a full-size copy) every iteration
            self.factor = torch.zeros_like(self.psi)
            self.factor_re = self.factor.real
        if use_fftw and not (self.fused and fftw.available()):
            raise ValueError("FFTW transforms need pyFFTW and the fused CPU kernels")
        self.use_fftw = (self.fused and self.ndim == 3) if use_fftw is None else use_fftw
        self._fftw_forced = bool(use_fftw)
        self._plans: fftw.PlanPair | None = None
        self._F: torch.Tensor | None = None  # the FFTW output buffer (transformed in place)
        self.psf = psf
        self._psf_on = False  # set by ``run`` from the PSF's start iteration
        self._psf_update = False  # a Richardson-Lucy step of the kernel is due this iteration
        self.measured = self.wa.square() if psf is not None else None  # w I_meas on F's scale

    @property
    def fft_name(self) -> str:
        """The transform the iterations ran with: "fftw" or "torch"."""
        return "torch" if self._plans is None else "fftw"

    # -- one iteration ---------------------------------------------------------------------
    def project_modulus(self) -> torch.Tensor:
        """Return P_M(psi) (B, *shape) complex64 without changing psi (a view of a buffer)."""
        self._modulus(free=False)
        return self.P

    def _modulus(self, *, free: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """F = fft(psi) -> modulus-projected; returns (chi2 (B,), chi2_free (B,) or None)."""
        if self._plans is not None:
            self._plans.forward()
            if self._psf_on:
                return self._modulus_psf(self._F, free=free)
            return self._modulus_fused(self._F, free=free)
        # no ``out=`` on the transforms: the out variant computes into a temporary and copies
        # (a third of the FFT's time on the CPU); a fresh tensor of the same size is cheap
        F = torch.fft.fftn(self.psi, dim=self.dims)
        if self._psf_on:
            return self._modulus_psf(F, free=free)
        if self.fused:
            return self._modulus_fused(F, free=free)
        self._intensity_torch(F)
        torch.sqrt(self.m2, out=self.mag)
        chi2, chi2_free = self._replace_magnitude(F, self.mag, free=free)
        self.P = torch.fft.ifftn(F, dim=self.dims)
        return chi2, chi2_free

    def _intensity_torch(self, F: torch.Tensor) -> None:
        """|F|² into the ``m2`` buffer (torch calls on the real view)."""
        Fr = torch.view_as_real(F)
        torch.mul(Fr, Fr, out=self.sq)
        torch.add(self.sq[..., 0], self.sq[..., 1], out=self.m2)

    def _replace_magnitude(self, F: torch.Tensor, mag: torch.Tensor, *, free: bool):
        """chi2 (and chi2_free) of the calculated magnitudes ``mag`` (B, *shape) against the
        data, then F <- F (w A / mag + 1 - w) in place: the torch chain of the modulus step
        (the ``m2`` buffer is overwritten, ``mag`` clamped above zero)."""
        B = self.batch
        # chi2 = sum w (|F| - A)^2 / sum w A^2, summed on the difference (no cancellation)
        torch.addcmul(self.neg_wa, mag, self.w, out=self.m2)
        chi2 = torch.linalg.vector_norm(self.m2.view(B, -1), dim=1).square_() / self.wa2
        chi2_free = None
        if free and self.free is not None:
            torch.addcmul(self.neg_fa, mag, self.free, out=self.m2)
            chi2_free = torch.linalg.vector_norm(self.m2.view(B, -1), dim=1).square_() / self.fa2
        mag.clamp_min_(_EPS)
        torch.addcdiv(self.omw, self.wa, mag, out=self.factor_re)  # w A / |F| + (1 - w)
        F.mul_(self.factor)
        return chi2, chi2_free

    def _chi2_of_sums(self, sums: np.ndarray, *, free: bool):
        """(chi2 (B,), chi2_free (B,) or None) from a fused kernel's (B, 2) sums."""
        chi2 = torch.from_numpy((sums[:, 0] / self.wa2).astype(np.float32))
        chi2_free = None
        if free and self.free is not None:
            chi2_free = torch.from_numpy((sums[:, 1] / self.fa2).astype(np.float32))
        return chi2, chi2_free

    def _modulus_fused(self, F: torch.Tensor, *, free: bool):
        """The modulus step of ``_modulus`` as one numba pass over F (CPU only); with FFTW plans
        the pass also applies the inverse transform's 1 / N, and that transform is in place."""
        B = self.batch
        flat = F.numpy().reshape(B, -1)
        scale = 1.0 if self._plans is None else 1.0 / flat.shape[1]
        if self.free is None or not free:  # free pixels have w = 0: kept as they are
            sums = kernels.modulus_project(flat, self._np["wa"], self._np["w"], scale=scale)
        else:
            sums = kernels.modulus_project(
                flat, self._np["wa"], self._np["w"], self._np["fa"], self._np["free"],
                scale=scale,
            )
        chi2, chi2_free = self._chi2_of_sums(sums, free=free)
        self._inverse(F)
        return chi2, chi2_free

    def _inverse(self, F: torch.Tensor) -> None:
        """P = ifft(F): in place through the FFTW plan (F is its buffer), else torch's."""
        if self._plans is not None:
            self._plans.backward()
            self.P = F
        else:
            self.P = torch.fft.ifftn(F, dim=self.dims)

    def _modulus_psf(self, F: torch.Tensor, *, free: bool):
        """The modulus step against a partially coherent model: F <- F sqrt(I / (|F|² ⊗ K))
        where the modulus is enforced, F kept elsewhere; chi2 of sqrt(|F|² ⊗ K). Torch calls
        (the blur needs two real FFTs whatever the device), then the inverse transform; on the
        CPU the fused passes (FFTW plans exist only with those)."""
        if self.fused:
            return self._modulus_psf_fused(F, free=free)
        self._intensity_torch(F)
        blurred = self.psf.blur(self.m2)
        if self._psf_update:
            self.psf.update(self.m2, blurred, self.measured, self.w)
        chi2, chi2_free = self._replace_magnitude(F, blurred.sqrt_(), free=free)
        self.P = torch.fft.ifftn(F, dim=self.dims)
        return chi2, chi2_free

    def _modulus_psf_fused(self, F: torch.Tensor, *, free: bool):
        """``_modulus_psf`` on the CPU: |F|² and the modulus step (bound, sqrt, chi2 sums and
        replacement) are one numba pass each around the blur's two real transforms."""
        B = self.batch
        flat = F.numpy().reshape(B, -1)
        m2 = kernels.intensity_into(flat, self.m2.numpy().reshape(B, -1))
        raw, centre, floor = self.psf.blur_unbounded(self.m2)
        if self._psf_update:  # the bounded blur for the kernel's step, the current kernel's
            # (a copy: the step's FFTW transforms reuse the blur's buffer; the pass below
            # bounds again, which changes nothing)
            raw = self.psf.bound(raw.clone(), self.m2, centre, floor)
            self.psf.update(self.m2, raw, self.measured, self.w)
        scale = 1.0 if self._plans is None else 1.0 / flat.shape[1]
        args = (flat, raw.numpy().reshape(B, -1), m2, centre.numpy(), floor.numpy(),
                self._np["wa"], self._np["w"])
        if self.free is None or not free:
            sums = kernels.modulus_project_blurred(*args, scale=scale)
        else:
            sums = kernels.modulus_project_blurred(*args, self._np["fa"], self._np["free"],
                                                   scale=scale)
        chi2, chi2_free = self._chi2_of_sums(sums, free=free)
        self._inverse(F)
        return chi2, chi2_free

    def _plan_fftw(self, work: int) -> None:
        """Make the FFTW plans (psi -> F, F -> F) for ``work`` iterations x runs, if worth it."""
        if not self.use_fftw or self._plans is not None:
            return
        F = torch.empty_like(self.psi)
        self._plans = fftw.plan_pair(
            self._np["psi"].reshape(self.psi.shape), F.numpy(), self.ndim,
            torch.get_num_threads(), 10**9 if self._fftw_forced else work,
            compare=not self._fftw_forced,
        )
        self._F = F if self._plans is not None else None

    def _plan_blurs(self, schedule: Schedule) -> None:
        """Give shrink-wrap and the PSF model FFTW plans for their real blurs (3D, fused CPU
        kernels, as the complex plans), when worth it for the blurs this schedule makes."""
        if not (self.use_fftw and fftw.available()):
            return
        total = schedule.total
        blurs = 0
        if self.shrinkwrap is not None and self.shrinkwrap.convolution is None:
            blurs += total // self.shrinkwrap.settings.period
        if self.psf is not None and self.psf.convolution is None:
            blurs += total - int(self.psf.settings.start * total)
        if blurs == 0:
            return
        conv = fftw.real_convolution(
            self.shape, self.batch, torch.get_num_threads(), blurs * self.batch
        )
        if self.shrinkwrap is not None and self.shrinkwrap.convolution is None:
            self.shrinkwrap.convolution = conv
        if self.psf is not None and self.psf.convolution is None:
            self.psf.convolution = conv

    @functools.cached_property
    def _np(self) -> dict[str, np.ndarray]:
        """Flat numpy views of the constant arrays and of psi, for the fused kernels."""
        out = {
            "wa": self.wa.numpy().reshape(-1),
            "w": self.w.numpy().reshape(-1),
            "psi": self.psi.numpy().reshape(self.batch, -1),
        }
        if self.free is not None:
            out["fa"] = self.fa.numpy().reshape(-1)
            out["free"] = self.free.numpy().reshape(-1)
        return out

    def _projected_amplitude(self) -> torch.Tensor:
        """|P| (B, *shape) of the last modulus projection, in the magnitude buffer."""
        if self.fused:
            flat = self.P.numpy().reshape(self.batch, -1)
            kernels.amplitude_into(flat, self.mag.numpy().reshape(self.batch, -1))
            return self.mag
        Pr = torch.view_as_real(self.P)
        torch.mul(Pr, Pr, out=self.sq)
        torch.add(self.sq[..., 0], self.sq[..., 1], out=self.m2)
        return torch.sqrt(self.m2, out=self.mag)

    def _remember(self, chi2: torch.Tensor) -> None:
        """Copy the runs whose chi2 is the lowest so far into the best buffer."""
        if getattr(self, "_best", None) is None:
            self._best = self.psi.clone()
            self._best_chi2 = chi2.clone()
            return
        better = chi2 < self._best_chi2
        if bool(better.any()):
            idx = torch.nonzero(better).flatten()
            self._best[idx] = self.psi[idx]
            self._best_chi2[idx] = chi2[idx]

    def _support_index(self, support: torch.Tensor) -> torch.Tensor:
        """Flat indices of the support voxels in psi.view(-1) (rebuilt when the support changes)."""
        if self._index_for is not support:
            self._index = torch.nonzero(support.reshape(-1) > 0.5).squeeze(1)
            self._index_for = support
        return self._index

    def _support_u8(self) -> np.ndarray:
        """(B, N) uint8 numpy copy of the support for the fused update (rebuilt when it changes)."""
        if self._u8_for is not self.support:
            flat = self.support.reshape(self.batch, -1) > 0.5
            self._u8 = flat.to(torch.uint8).numpy()
            self._u8_for = self.support
        return self._u8

    def _update(self, name: str, beta: float | None) -> None:
        """psi <- ER / HIO / RAAR from psi and P = P_M psi.

        Fused (CPU): one numba pass. Otherwise the outside-support rule is applied to the whole
        box in one torch pass, then the support voxels (a few % of the box) are overwritten with
        P by index: no per-voxel coefficient arrays, no ``torch.where``.
        """
        if self.fused and not self.positivity:
            P = self.P.numpy().reshape(self.batch, -1)
            kernels.update_outside(self._np["psi"], P, self._support_u8(), *_outside(name, beta))
            return
        if self.positivity:
            self.P.imag.zero_()
            support = self.support * (self.P.real > 0).to(self.support.dtype)
            index = torch.nonzero(support.reshape(-1) > 0.5).squeeze(1)
        else:
            index = self._support_index(self.support)
        if name == "ER":  # outside: 0
            self.psi.zero_()
        elif name == "HIO":  # outside: psi - beta P
            self.psi.sub_(self.P, alpha=beta)
        elif name == "RAAR":  # outside: beta psi + (1 - 2 beta) P
            self.psi.mul_(beta).add_(self.P, alpha=1.0 - 2.0 * beta)
        flat = self.psi.view(-1)
        flat.index_copy_(0, index, self.P.view(-1).index_select(0, index))

    # -- the loop ----------------------------------------------------------------------------
    def run(
        self,
        schedule: Schedule,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelLike | None = None,
        report_every_s: float = 0.25,
        keep_best: bool = False,
    ) -> EngineHistory:
        """Run every iteration of ``schedule``; honour ``cancel`` each iteration.

        With ``keep_best`` the iterate of lowest chi2 (the start included) is what remains in
        ``psi`` at the end, so a refinement never returns a worse object than it was given (with
        a PSF, the lowest chi2 of the blurred model, from the iteration it is switched on).
        A schedule of ER only reduces chi2 at every iteration while the support stays fixed
        (the error-reduction property), so there the best iterate of each stretch of one
        support is its last: only the start, the last iterate before each shrink-wrap update
        takes effect and the end are compared, instead of copying every new best iterate
        (without shrink-wrap: the start and the end).
        """
        total = schedule.total
        self._plan_fftw(total * self.batch)
        self._plan_blurs(schedule)
        # records preallocated on the device: no host sync per iteration on CUDA, and no small
        # allocation per iteration that would outlive it (on the CPU those split the freed FFT
        # buffers that ``heap.reuse_freed_memory`` keeps for the next iteration)
        dev = self.psi.device
        chi2 = torch.zeros((total, self.batch), dtype=torch.float32, device=dev)
        chi2_free = torch.full((total, self.batch), math.nan, dtype=torch.float32, device=dev)
        fractions = [(0, self.support.reshape(self.batch, -1).mean(dim=1))]
        sw = self.shrinkwrap
        psf_start = total
        if self.psf is not None:
            psf_start = int(self.psf.settings.start * total)
        period = self.psf.settings.period if self.psf is not None else 0
        # ER with a fixed support never raises chi2: only a support update can
        er_only = self.psf is None and all(seg.name == "ER" for seg in schedule.segments())
        last_of_support = -1  # the iteration whose psi is the last made with the old support
        last_report = time.monotonic()
        it = 0
        for seg in schedule.segments():
            for _ in range(seg.start, seg.end):
                check(cancel)
                self._psf_on = it >= psf_start
                if keep_best and it == psf_start and it > 0:
                    self._best = None  # chi2 of the blurred model from here: compare only those
                self._psf_update = period > 0 and it > psf_start and (it - psf_start) % period == 0
                want_free = it % self.free_period == 0 or it == total - 1
                c, cf = self._modulus(free=want_free)
                chi2[it] = c
                if keep_best and (it == 0 or not er_only or it == last_of_support):
                    self._remember(c)
                if cf is not None:
                    chi2_free[it] = cf
                self._update(seg.name, seg.beta)
                if sw is not None and (it + 1) % sw.settings.period == 0 and it + 1 < total:
                    self.support = sw.update(self._projected_amplitude(), self.support)
                    last_of_support = it + 1
                    fractions.append((it + 1, self.support.reshape(self.batch, -1).mean(dim=1)))
                it += 1
                now = time.monotonic()
                if progress is not None and (now - last_report >= report_every_s or it == total):
                    last_report = now
                    values = {"chi2": float(c.min()), "iteration": it}
                    report(
                        progress,
                        ProgressEvent(it / total, stage=seg.name, step=it, total=total,
                                      values=values, message=f"{seg.name} {it}/{total}"),
                    )
        self._psf_update = False
        if self.positivity:
            self.psi.imag.zero_()
        self.psi.mul_(self.support)
        if keep_best:
            c, _ = self._modulus(free=False)
            self._remember(c)
            self.psi.copy_(self._best)
        history_chi2 = chi2.cpu().numpy()
        history_free = chi2_free.cpu().numpy()
        history_fraction = np.empty((total, self.batch), dtype=np.float32)
        for i, value in fractions:
            history_fraction[i:] = value.cpu().numpy()
        return EngineHistory(
            chi2=history_chi2, chi2_free=history_free, support_fraction=history_fraction
        )
