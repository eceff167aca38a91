"""Molecule-VAE training on Ray Train: 2 gloo workers, checkpoints, resume after a killed worker."""

import json
import math
import signal
import threading

import numpy as np
import pytest
import torch

from latentsci.molecules.vae import MoleculeVAE, MoleculeVAEConfig
from latentsci.molecules.vae.batching import collate, make_example
from latentsci.molecules.vae.schedules import KLSchedule
from latentsci.molecules.vae.selfies_vocab import SelfiesVocabulary
from latentsci.runtime.train import cosine_lr, resume_point
from latentsci.molecules.vae.steps import NonFiniteLoss, train_epoch
from latentsci.molecules.vae.train import TrainConfig, train_molecule_vae

from conftest import SMILES, train_killing_one_worker

TINY = MoleculeVAEConfig(latent_dim=8, encoder_hidden=32, encoder_layers=2, decoder_embed=16,
                         decoder_hidden=64, decoder_layers=1)


def _config(epochs, workers=2, every=None, lr_decay="none"):
    return TrainConfig(model=TINY, kl=KLSchedule(beta=0.01, warmup_steps=5), epochs=epochs,
                       batch_size=4, max_len=40, validation_molecules=4, num_workers=workers,
                       max_failures=1, checkpoint_every_steps=every, lr_decay=lr_decay)


def test_resumes_from_checkpoint_after_a_worker_is_killed(ray_cluster, tmp_path):
    storage = tmp_path / "state"
    fed_by = []  # the thread each epoch's row reached the stage on
    history = train_killing_one_worker(
        lambda: train_molecule_vae(SMILES, None, SMILES[:4],
                                   _config(epochs=40, every=1, lr_decay="cosine"), "vae",
                                   storage, tmp_path / "model",
                                   on_epoch=lambda row: fed_by.append(
                                       threading.current_thread().name)),
        storage / "vae")
    assert "epoch-feed" in fed_by  # some epochs were logged live, while training ran
    assert [row["epoch"] for row in history] == list(range(40))
    assert history[-1]["attempt_start_step"] > 0  # the last attempt resumed, not restarted
    # checkpoints every step: a resume mid-epoch skips exactly the batches already done
    per_epoch = history[0]["step"]
    assert per_epoch > 1 and all(r["step"] == (r["epoch"] + 1) * per_epoch for r in history)
    # the learning rate follows the epoch, also in the epochs after the resume
    assert [r["lr"] for r in history] == pytest.approx([cosine_lr(1e-3, e, 40) for e in range(40)])
    assert history[0]["lr"] == pytest.approx(1e-3) and history[-1]["lr"] < 1e-5
    # the exported model is the newest checkpoint Ray kept (the one with the most steps), whole
    kept = [p for p in (storage / "vae").glob("checkpoint_*") if p.is_dir()]
    newest = max(kept, key=lambda p: json.loads((p / "meta.json").read_text())["step"])
    exported = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert (exported["epoch"], exported["step"], exported["batches_done"]) == (
        39, 40 * per_epoch, None)
    assert exported == json.loads((newest / "meta.json").read_text())
    saved = torch.load(newest / "model.pt", weights_only=True)
    model = MoleculeVAE.load(str(tmp_path / "model"))
    state = model.state_dict()
    assert state.keys() == saved.keys() and all(torch.equal(state[k], saved[k]) for k in saved)
    assert np.isfinite(model.encode(SMILES)).all()  # every training molecule encodes


def test_rerun_resumes_and_stops_at_the_configured_epochs(ray_cluster, tmp_path):
    storage = tmp_path / "state"
    first = train_molecule_vae(SMILES, None, SMILES[:4], _config(epochs=2, workers=1), "vae",
                               storage, tmp_path / "m1")
    # a rerun on more workers (an execution setting) resumes too
    again = train_molecule_vae(SMILES, None, SMILES[:4], _config(epochs=3, workers=2), "vae",
                               storage, tmp_path / "m2")
    assert [r["epoch"] for r in first] == [0, 1]
    assert [r["epoch"] for r in again] == [0, 1, 2] and again[-1]["attempt_start_epoch"] == 2
    assert again[:2] == first  # read back from the first run's checkpoint
    last = again[-1]
    # 4 validation molecules, all encodable, decoded 3 times each: hits out of 12
    hits = last["recon_accuracy"] * 12
    assert 0 <= hits <= 12 and hits == pytest.approx(round(hits), abs=1e-9)
    assert last["active_units"] in set(range(TINY.latent_dim + 1))
    assert math.isfinite(last["molecules_per_s"]) and last["molecules_per_s"] > 0
    assert last["validity"] == 1.0 and last["rejected"] == 0


def test_checkpoints_every_k_steps_mark_the_batches_done(ray_cluster, tmp_path):
    import json

    storage = tmp_path / "state"
    before = signal.getsignal(signal.SIGINT)
    history = train_molecule_vae(SMILES, None, SMILES[:4], _config(epochs=1, workers=1, every=2),
                                 "vae", storage, tmp_path / "m")
    # Ray Train's own Ctrl-C handler (abort training, let the caller go on) is kept out: the
    # driver's stops the run and keeps the checkpoints
    assert signal.getsignal(signal.SIGINT) is before
    metas = [json.loads(p.read_text()) for p in sorted((storage / "vae").glob("checkpoint_*/meta.json"))]
    batches = history[0]["step"]  # 20 molecules in batches of 4
    last_mid_epoch = (batches - 1) // 2 * 2  # the last multiple of 2 before the epoch's end
    assert batches >= 4 and [m["batches_done"] for m in metas] == [last_mid_epoch, None]


def test_resume_point_on_another_number_of_workers():
    assert resume_point({"epoch": 3, "batches_done": None}, world=2) == (4, 0)
    assert resume_point({"epoch": 3, "batches_done": 10, "world": 2}, world=2) == (3, 10)
    # on another number of workers the data split differs: the interrupted epoch starts over
    assert resume_point({"epoch": 3, "batches_done": 10, "world": 2}, world=4) == (3, 0)
    assert resume_point({"epoch": 3, "batches_done": 10, "world": 2}, world=1) == (3, 0)


def test_non_finite_loss_names_the_step():
    vocab = SelfiesVocabulary.build(SMILES, max_len=40)
    from latentsci.molecules.vae import build_molecule_vae

    model = build_molecule_vae(TINY, len(vocab))
    with torch.no_grad():
        model.decoder.out.bias.fill_(float("nan"))
    batch = collate([make_example(s, vocab) for s in SMILES[:4]])
    optimizer = torch.optim.Adam(model.parameters())
    with pytest.raises(NonFiniteLoss) as err:
        train_epoch(model, [batch], optimizer, KLSchedule(), step=17, device=torch.device("cpu"))
    assert str(err.value) == "loss is nan at step 17" and err.value.step == 17
