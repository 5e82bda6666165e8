"""``styletransfer video`` against a real server: video files (with their audio) and folders of numbered frames in and
out, frame rates and sizes, and errors that leave no partial video behind."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from clients import video
from clients.cli import main as cli
from tests.helpers import CLIP_RATE, make_image, png_bytes, write_clip


def probe(path: Path) -> dict:
    """A video's frames, rate and size, and its audio codec and length (decoded: WebM states no durations)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_image() for frame in container.decode(stream)]
        found = {"frames": frames, "rate": stream.average_rate, "size": frames[0].size, "audio": None}
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio))
            found.update(audio=audio.codec_context.name, audio_seconds=samples / audio.rate)
    return found


@pytest.fixture
def style(tmp_path: Path) -> str:
    path = tmp_path / "style.png"
    path.write_bytes(png_bytes(32, 32, 2))
    return str(path)


def run(server, *args: str) -> int:
    return cli(["--target", server.target, "video", *args, "--style-size", "32"])


def test_a_video_round_trips_with_its_frames_rate_size_and_audio(server, tmp_path: Path, style: str,
                                                                 capsys) -> None:
    write_clip(tmp_path / "clip.mp4")
    assert run(server, str(tmp_path / "clip.mp4"), style, "-o", str(tmp_path / "out.mp4"), "--temporal") == 0
    got, source = probe(tmp_path / "out.mp4"), probe(tmp_path / "clip.mp4")
    assert (len(got["frames"]), got["rate"], got["size"], got["audio"]) == (8, CLIP_RATE, (64, 48), "aac")
    assert got["audio_seconds"] == pytest.approx(source["audio_seconds"], abs=0.001)  # copied
    difference = np.abs(np.asarray(got["frames"][3], float) - np.asarray(source["frames"][3], float)).mean()
    assert difference > 10  # stylized, not the input passed through
    captured = capsys.readouterr()
    assert "out.mp4: 8 frames of 64x48 at 12 fps" in captured.out and "8/8" in captured.err  # the progress bar
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_audio_the_output_container_cannot_hold_is_re_encoded(server, tmp_path: Path, style: str) -> None:
    write_clip(tmp_path / "clip.mp4", frames=4)
    assert run(server, str(tmp_path / "clip.mp4"), style, "-o", str(tmp_path / "out.webm")) == 0
    got = probe(tmp_path / "out.webm")  # WebM holds Opus or Vorbis, not AAC
    assert (len(got["frames"]), got["audio"]) == (4, "opus")
    assert got["audio_seconds"] == pytest.approx(probe(tmp_path / "clip.mp4")["audio_seconds"], abs=0.03)


def test_folders_of_numbered_frames_round_trip_in_number_order(server, tmp_path: Path, style: str) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(1, 11):  # frame_2 comes before frame_10
        make_image(40, 30, seed=i).save(frames / f"frame_{i}{'.jpg' if i % 2 else '.png'}")
    assert run(server, str(frames), style, "-o", str(tmp_path / "out")) == 0
    written = sorted((tmp_path / "out").iterdir())
    assert sorted(p.name for p in written) == sorted(f"frame_{i}.png" for i in range(1, 11))
    assert {Image.open(p).size for p in written} == {(40, 30)}
    assert run(server, str(frames), style, "-o", str(tmp_path / "out.mp4"), "--fps", "10") == 0
    got = probe(tmp_path / "out.mp4")
    assert (len(got["frames"]), got["rate"], got["size"], got["audio"]) == (10, 10, (40, 30), None)
    in_order = [np.asarray(Image.open(tmp_path / "out" / f"frame_{i}.png"), float) for i in (1, 2, 10)]
    from_video = [np.asarray(got["frames"][i], float) for i in (0, 1, 9)]
    for expected, frame in zip(in_order, from_video, strict=True):
        assert np.abs(expected - frame).mean() < 12  # the same frame, through H.264


def test_size_and_rate_resample_a_video_and_odd_sides_are_trimmed(server, tmp_path: Path, style: str) -> None:
    write_clip(tmp_path / "clip.mp4", frames=8, size=(64, 48), audio=None)
    assert run(server, str(tmp_path / "clip.mp4"), style, "-o", str(tmp_path / "half"), "--fps", "6",
               "--size", "24") == 0
    assert [Image.open(p).size for p in sorted((tmp_path / "half").iterdir())] == [(32, 24)] * 4  # 8 at 12 fps
    assert run(server, str(tmp_path / "clip.mp4"), style, "-o", str(tmp_path / "odd.mp4"), "--size", "23") == 0
    assert probe(tmp_path / "odd.mp4")["size"] == (30, 22)  # 30x23: 4:2:0 video needs even sides


def test_a_frame_the_server_refuses_stops_the_command_and_leaves_no_partial_video(server, tmp_path: Path,
                                                                                   style: str, capsys) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    make_image(40, 30, seed=1).save(frames / "f1.png")
    (frames / "f2.png").write_bytes(b"not a png")
    make_image(40, 30, seed=3).save(frames / "f3.png")
    assert run(server, str(frames), style, "-o", str(tmp_path / "out.mp4")) == 1
    err = capsys.readouterr().err
    assert "error: INVALID_ARGUMENT: frame 1 (f2): frame.image" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == []


@pytest.mark.parametrize(("source", "output", "message"), [
    ("missing.mp4", "out.mp4", "no such video file or folder"),
    ("clip.gif", "out.mp4", "not a video this command reads"),
    ("frames", "out.gif", "write a video"),
    ("empty", "out.mp4", "no PNG or JPEG frames"),
    ("unnumbered", "out.mp4", "need a number"),
])
def test_inputs_and_outputs_it_cannot_use_are_one_line_errors(tmp_path: Path, style: str, capsys, source: str,
                                                              output: str, message: str) -> None:
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    for folder in ("frames", "empty", "unnumbered"):
        (tmp_path / folder).mkdir()
    make_image(16, 16).save(tmp_path / "frames" / "1.png")
    make_image(16, 16).save(tmp_path / "unnumbered" / "first.png")
    args = ["--target", "127.0.0.1:9", "video", str(tmp_path / source), style, "-o", str(tmp_path / output)]
    assert cli(args) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("rate", [12, 30, 45])  # fewer frames, the same, every other frame twice
def test_resampling_shows_the_frame_on_screen_and_keeps_the_duration(rate: int) -> None:
    one_second = [(i / 30, bytes([i])) for i in range(30)]
    taken = [data[0] for data in video.at_rate(iter(one_second), Fraction(30), Fraction(rate))]
    assert taken == [k * 30 // rate for k in range(rate)]  # output frame k shows the input frame at k / rate s


@pytest.mark.slow
def test_the_installed_command_writes_a_stabilised_video_and_folders(server, tmp_path: Path, style: str) -> None:
    write_clip(tmp_path / "clip.mp4", frames=4)
    script = Path(sys.executable).with_name("styletransfer")
    for source, output in (("clip.mp4", "out.mp4"), ("clip.mp4", "frames"), ("frames", "again")):
        done = subprocess.run([str(script), "--target", server.target, "video", str(tmp_path / source), style, "-o",
                               str(tmp_path / output), "--temporal", "--style-size", "32"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    assert len(probe(tmp_path / "out.mp4")["frames"]) == 4
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [f"{i:06d}.png" for i in range(4)]
