"""Bad inputs for the command line, one row each: the files a user gives, the command, what it must say.

Used by ``tests/test_cli_bad_inputs.py`` (every case: exit status 2, one line on stderr matching
``message``, ``--out`` left as it was) and ``benchmarks/bad_inputs.py`` (the table of messages
committed under ``benchmarks/results/``). ``{tmp}`` in arguments and file contents is the case's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

VALUES = "a,b,c,value\n0,0,0,0.0\n1,0,0,1.0\n0,1,0,2.0\n0,0,1,3.0\n1,1,0,3.5\n1,0,1,4.0\n0,1,1,5.0\n1,1,1,6.0\n"
META = "example_id,contributor,label\ne1,alice,0\ne2,alice,1\ne3,bob,2\n"
# a config whose contributors come from a metadata file: the registry is built (and checked) before any model
META_CONFIG = """
contributors:
  class_path: surrogateshap.contributors.ContributorRegistry.from_file
  init_args: {{path: "{tmp}/{meta}", num_labels: 3}}
plan: {{samples_per_contributor: 2}}
generation:
  backend: {{class_path: surrogateshap.generation.backends.ddpm.ClassConditionalDDPM.from_pretrained,
            init_args: {{path: "{tmp}"}}}}
  extractors: {{}}
utilities: {{}}
"""


@dataclass(frozen=True)
class Case:
    """``args`` run in a folder holding ``files`` (name -> text or bytes); ``out`` is the folder that
    must be left as it was (``keep`` holds files put there before the run, or None: it does not exist)."""

    name: str
    args: list[str]
    message: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    out: str = "out"
    keep: dict[str, str] | None = None

    def prepare(self, folder: Path) -> list[str]:
        """Write the case's files into ``folder``; return the arguments with ``{tmp}`` filled in."""
        for name, content in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content.replace("{tmp}", str(folder)), encoding="utf-8")
        if self.keep is not None:
            (folder / self.out).mkdir(parents=True, exist_ok=True)
            for name, text in self.keep.items():
                (folder / self.out / name).write_text(text, encoding="utf-8")
        return [a.replace("{tmp}", str(folder)) for a in self.args]


def _estimate(values: str | bytes, *extra: str, name: str, message: str, **kwargs) -> Case:
    return Case(name, ["estimate", "--values", "{tmp}/v.csv", "--out", "{tmp}/out", *extra], message,
                {"v.csv": values}, **kwargs)


def _lines(text: str, drop: int | None = None, add: str = "", replace: tuple[str, str] | None = None) -> str:
    lines = text.splitlines()
    if drop is not None:
        del lines[drop]
    out = "\n".join(lines) + "\n" + add
    return out.replace(*replace) if replace else out


def _attribute(meta: str | bytes, *, name: str, message: str, meta_name: str = "meta.csv") -> Case:
    return Case(name, ["attribute", "--config", "{tmp}/c.yaml", "--out", "{tmp}/out", "--no-wandb"], message,
                {"c.yaml": META_CONFIG.format(tmp="{tmp}", meta=meta_name), meta_name: meta})


def _demo(*sets: str, name: str, message: str, config: str | None = None, **kwargs) -> Case:
    args = ["demo", "--out", "{tmp}/out", "--no-wandb"]
    if config is not None:
        args += ["--config", "{tmp}/c.yaml"]
        kwargs.setdefault("files", {})["c.yaml"] = config
    for item in sets:
        args += ["--set", item]
    return Case(name, args, message, **kwargs)


def _digits_config(edit: tuple[str, str]) -> str:
    from surrogateshap.examples.digits.demo import default_config_path

    text = default_config_path().read_text(encoding="utf-8")
    assert edit[0] in text, edit
    return text.replace(*edit, 1)


_RETRAIN = ["retrain", "--coalitions", "{tmp}/c.csv", "--out", "{tmp}/out"]
_RETRAIN_ONE = ("coalition," + ",".join(f"digit{d}_{x}" for d in range(10) for x in "ab") + "\n"
                + "s0," + ",".join(["1"] + ["0"] * 19) + "\n")


def _ADD_V_EMPTY(mapping: str) -> tuple[str, str]:  # noqa: N802 - reads as a constant edit
    return "\nestimator:", f"\nv_empty: {mapping}\nestimator:"


def cases() -> list[Case]:
    """Every bad input of the table (built on call: the digits config is read from the installed package)."""
    return [
        # ---- estimate: the coalition values file
        Case("values file missing", ["estimate", "--values", "{tmp}/none.csv", "--out", "{tmp}/out"],
             r"none\.csv does not exist"),
        Case("values path with a name too long", ["estimate", "--values", "{tmp}/" + "x" * 300 + ".csv", "--out",
                                                  "{tmp}/out"], r"a name in this path is too long for the file system"),
        Case("values file is a folder", ["estimate", "--values", "{tmp}/d", "--out", "{tmp}/out"],
             r"is a folder, not a file", {"d/x": ""}),
        _estimate("", name="values file empty", message=r"v\.csv is empty"),
        _estimate("\n\n  \n", name="values file blank lines only", message=r"v\.csv is empty"),
        _estimate("a,b,value\n", name="header only", message=r"has a header but no rows"),
        _estimate(VALUES.encode().replace(b"2.0", b"2.0\xe9"), name="latin-1 byte",
                  message=r"line 4: byte 0xe9 is not UTF-8"),
        _estimate(b"a,b,c,value\n0,0\x00,0,1\n", name="NUL byte", message=r"line 2: holds a NUL byte"),
        _estimate(_lines(VALUES, replace=("a,b,c,value", "a,b,a,value")), name="repeated column name",
                  message=r"column name 'a' appears twice in the header \(columns 1 and 3\)"),
        _estimate(_lines(VALUES, replace=("a,b,c,value", "a,,c,value")), name="blank column name",
                  message=r"column 2 of the header has no name"),
        _estimate(_lines(VALUES, replace=("1,0,0,1.0", "1,0,1.0")), name="row with a field missing",
                  message=r"line 3 has 3 field\(s\) but the header has 4"),
        _estimate(_lines(VALUES, replace=("1,0,0,1.0", "1,0,0,1.0,7")), name="row with an extra field",
                  message=r"line 3 has 5 field\(s\) but the header has 4"),
        _estimate(_lines(VALUES, replace=("0,1,0,2.0", "0,2,0,2.0")), name="mask field 2",
                  message=r"line 4, column 'b': '2' is not 0 or 1"),
        _estimate(_lines(VALUES, replace=("0,1,0,2.0", "0,yes,0,2.0")), name="mask field 'yes'",
                  message=r"line 4, column 'b': 'yes' is not 0 or 1"),
        _estimate(_lines(VALUES, replace=("0,1,0,2.0", "0,,0,2.0")), name="mask field empty",
                  message=r"line 4, column 'b': '' is not 0 or 1"),
        _estimate(VALUES.replace(",", ";"), name="semicolon-separated values file",
                  message=r"the header is one column 'a;b;c;value': the file looks separated by semicolons"),
        _estimate(VALUES.replace(",", "\t"), name="tab-separated values file",
                  message=r"the file looks separated by tabs, not commas"),
        _estimate(_lines(VALUES, replace=("0,1,0,2.0", '0,1,0,"2.0')), name="quote never closed",
                  message=r"v\.csv line 4: a quote \(\"\) opened on this line is never closed"),
        _estimate("a,b,value\n0,0,0\n1,1,3\n", name="only the empty and the full coalition",
                  message=r"has 0 coalition\(s\) besides the empty and the full one; the surrogate's cross-validation "
                          r"needs at least 2"),
        _estimate(VALUES, "--seed", str(2**70), name="--seed beyond 2**32",
                  message=r"seed must be an integer from 0 to 4294967295"),
        _estimate(_lines(VALUES, replace=("2.0", "nan")), name="value NaN",
                  message=r"line 4, column 'value': 'nan' is not a finite number"),
        _estimate(_lines(VALUES, replace=("2.0", "inf")), name="value inf",
                  message=r"line 4, column 'value': 'inf' is not a finite number"),
        _estimate(_lines(VALUES, replace=("2.0", "-Infinity")), name="value -Infinity",
                  message=r"'-Infinity' is not a finite number"),
        _estimate(_lines(VALUES, replace=("2.0", "two")), name="value not a number",
                  message=r"line 4, column 'value': 'two' is not a finite number"),
        _estimate(_lines(VALUES, replace=("2.0", "")), name="value empty",
                  message=r"line 4, column 'value': '' is not a finite number"),
        _estimate(_lines(VALUES, add="1,1,1,9.0\n"), name="coalition twice, values differ",
                  message=r"line 10: the coalition of line 9 again, with value 9\.0 instead of 6\.0"),
        _estimate(_lines(VALUES, replace=(",value", ",utility")), name="no value column",
                  message=r"has no 'value' column"),
        _estimate("value\n0\n1\n", name="no contributor column", message=r"has no contributor column"),
        _estimate(_lines(VALUES, drop=1), name="no empty coalition", message=r"no row for the empty coalition"),
        _estimate(_lines(VALUES, drop=8), name="no full coalition", message=r"no row for the full coalition"),
        _estimate("coalition,a,b,value\nx,0,0,0\nx,1,1,1\n", name="coalition names repeated",
                  message=r"line 3, column 'coalition': name 'x' is used again \(first on line 2\)"),
        _estimate(_lines(VALUES), "--cv", "1", name="--cv 1",
                  message=r"--cv 1: the cross-validation needs at least 2 folds"),
        _estimate(_lines(VALUES), "--bootstrap", "50", name="--bootstrap without --std bootstrap",
                  message=r"--bootstrap 50 sets the refits of --std bootstrap, but the standard errors are "
                          r"--std folds"),
        _estimate(_lines(VALUES), "--std", "bootstrap", "--bootstrap", "1", name="--bootstrap 1",
                  message=r"n_bootstrap must be an integer of at least 2"),
        _estimate(_lines(VALUES), "--seed", "-1", name="--seed -1",
                  message=r"seed must be an integer from 0 to 4294967295"),
        _estimate(_lines(VALUES, replace=("6.0", "5_5")), name="value with an underscore",
                  message=r"line 9, column 'value': '5_5' is not a finite number"),
        _estimate(_lines(VALUES, replace=("6.0", "1e308")), name="value beyond float32",
                  message=r"line 9, column 'value': 1e\+308 is beyond float32's range"),
        Case("values file is a device", ["estimate", "--values", "/dev/null", "--out", "{tmp}/out"],
             r"/dev/null is not a regular file"),
        Case("values file in --out under an output name",
             ["estimate", "--values", "{tmp}/out/attribution.csv", "--out", "{tmp}/out"],
             r"is in --out \S+ under a name the run writes", keep={"attribution.csv": VALUES}),
        # ---- --out
        Case("--out empty", ["estimate", "--values", "{tmp}/v.csv", "--out", ""], r"--out is empty; give a path",
             {"v.csv": VALUES}),
        Case("--out is a file", ["estimate", "--values", "{tmp}/v.csv", "--out", "{tmp}/f"],
             r"--out \S+/f is an existing file", {"v.csv": VALUES, "f": "x"}, out="f"),
        Case("--out below a file", ["estimate", "--values", "{tmp}/v.csv", "--out", "{tmp}/f/run"],
             r"--out \S+/f/run is below \S+/f, which is a file", {"v.csv": VALUES, "f": "x"}, out="f.missing"),
        _estimate(_lines(VALUES, replace=("2.0", "nan")), name="bad file, --out with earlier results",
                  message=r"is not a finite number", keep={"attribution.json": "{}"}),
        # ---- configs (attribute, demo)
        Case("config missing", ["attribute", "--config", "{tmp}/none.yaml", "--out", "{tmp}/out"],
             r"config file \S+none\.yaml does not exist"),
        Case("config empty", ["attribute", "--config", "{tmp}/c.yaml", "--out", "{tmp}/out"],
             r"config file \S+c\.yaml is empty", {"c.yaml": ""}),
        Case("config not YAML", ["attribute", "--config", "{tmp}/c.yaml", "--out", "{tmp}/out"],
             r"is not valid YAML: .* at line 2, column", {"c.yaml": "plan: {a: 1\nb: [\n"}),
        Case("config a list", ["attribute", "--config", "{tmp}/c.yaml", "--out", "{tmp}/out"],
             r"must hold a mapping of sections at the top level, got list", {"c.yaml": "- plan\n"}),
        Case("config not UTF-8", ["attribute", "--config", "{tmp}/c.yaml", "--out", "{tmp}/out"],
             r"line 2: byte 0xff is not UTF-8", {"c.yaml": b"plan:\n  seed: \xff\n"}),
        _demo(name="misspelt section", config=_digits_config(("\nestimator:", "\nestimater:")),
              message=r"unknown section 'estimater' \(did you mean 'estimator'\?\)"),
        _demo(name="misspelt estimator key",
              config=_digits_config(("  method: surrogateshap", "  methd: surrogateshap")),
              message=r"unknown key 'methd' in section 'estimator' \(did you mean 'method'\?\)"),
        _demo(name="misspelt plan key",
              config=_digits_config(("  samples_per_contributor: 64", "  samples_per_contibutor: 64")),
              message=r"unknown key 'samples_per_contibutor' in section 'plan' \(did you mean 'samples_per_contrib"),
        _demo(name="misspelt trainer key", config=_digits_config(("  accelerator: cpu", "  acelerator: cpu")),
              message=r"unknown key 'acelerator' in section 'trainer' \(did you mean 'accelerator'\?\)"),
        _demo("estimator.budget=[1,", name="--set value not YAML",
              message=r"override 'estimator.budget=\[1,': '\[1,' is not a YAML value"),
        _demo("estimator.budget=.inf", name="--set budget inf",
              message=r"budget must be an integer of at least 2, got inf"),
        _demo("estimator.budget=.nan", name="--set budget NaN",
              message=r"budget must be an integer of at least 2, got nan"),
        _demo("estimator.budget=64.5", name="--set budget a float", message=r"budget must be an integer .* got 64\.5"),
        _demo("estimator.budget=lots", name="--set budget a string",
              message=r"budget must be an integer .* got 'lots'"),
        _demo("estimator.budget=1", name="--set budget 1", message=r"budget must be an integer of at least 2, got 1"),
        _demo("estimator.method=banzhaf", name="--set unknown method", message=r"unknown method 'banzhaf'"),
        _demo("estimator.budgett=64", name="--set unknown key",
              message=r"override key 'estimator.budgett' does not exist"),
        _demo("estimator", name="--set without =", message=r"must look like dotted.key=value"),
        _demo("paths.ddpm=/nonexistent/ddpm", name="missing model folder",
              message=r"paths.ddpm: /nonexistent/ddpm"),
        _demo("plan.samples_per_contributor=0", name="no samples per contributor",
              message=r"get no samples"),
        _demo("generation.batch_size=0", name="batch size 0",
              message=r"generation.batch_size must be an integer of at least 1, got 0"),
        _demo("generation.guidance_scale=.nan", name="guidance scale NaN",
              message=r"generation.guidance_scale must be a finite number, got nan"),
        _demo("data.corrupted=[nobody]", name="planting names an unknown contributor", message=r"nobody"),
        # ---- the objects a config builds: checked before any model is trained, loaded or sampled
        _demo("utilities=[fid, quality]", name="utilities a list",
              message=r"config `utilities` must map each name to a ContributorMetric .* got list"),
        _demo("utilities.fid.class_path=surrogateshap.metrics.ContributorFIDD", name="utility class_path typo",
              message=r"config\.utilities\.fid: class_path 'surrogateshap\.metrics\.ContributorFIDD': 'surrogateshap\."
                      r"metrics' has no attribute 'ContributorFIDD' \(did you mean 'ContributorFID'\?\)"),
        _demo(name="utility init argument typo",
              config=_digits_config(("      feature: embedding\n", "      featur: embedding\n")),
              message=r"config\.utilities\.fid\.init_args: surrogateshap\.metrics\.ContributorFID takes no "
                      r"argument\(s\) \['featur'\]"),
        _demo("generation.extractors.embedding.class_path=surrogateshap.examples.digits.DigitsExtractr",
              name="extractor class_path typo", message=r"config\.generation\.extractors\.embedding: class_path .*"
              r"has no attribute 'DigitsExtractr' \(did you mean 'DigitsExtractor'\?\)"),
        _demo("roles=[a, b]", name="roles a list", message=r"config `roles` must map contributor ids to role names"),
        _demo(name="v_empty a word", config=_digits_config(_ADD_V_EMPTY("{fid: base_model}")),
              message=r"v_empty\.fid must be a finite number, got 'base_model'"),
        _demo(name="v_empty for an unknown utility", config=_digits_config(_ADD_V_EMPTY("{fdi: 3}")),
              message=r"v_empty names unknown utilities \['fdi'\]"),
        _demo("trainer.accelerator=gpu", name="accelerator this machine lacks",
              message=r"trainer section: Lightning refuses these arguments: .*(not available|no GPU|CUDA|gpu)"),
        _demo(name="unknown precision",
              config=_digits_config(("  accelerator: cpu", "  accelerator: cpu\n  precision: 17")),
              message=r"trainer section: Lightning refuses these arguments: Precision 17 is invalid"),
        _demo('data.corrupted="digit1_b"', name="planting list written as a string",
              message=r"corrupted must be a list of contributor ids, got the string 'digit1_b' \(write \[digit1_b\]\)"),
        _demo("seed=1180591620717411303424", name="seed beyond 2\*\*32",
              message=r"seed must be an integer from 0 to 4294967295 \(2\*\*32 - 1\), got 1180591620717411303424"),
        Case("artists demo with a planting its LoRA was not trained on",
             ["demo", "--setting", "artists", "--out", "{tmp}/out", "--no-wandb", "--set", "data.marker_subject=5"],
             r"the config's planting \(data: \['marker_subject'\] differ\) is not the one the LoRA at paths\.lora "
             r"was fine-tuned on"),
        Case("demo --config missing", ["demo", "--config", "{tmp}/none.yaml", "--out", "{tmp}/out"],
             r"config file \S+none\.yaml does not exist"),
        _demo(name="config key given twice", config=_digits_config(("  budget: 256", "  budget: 256\n  budget: 64")),
              message=r"key 'budget' appears twice in one mapping"),
        # ---- metadata files (the registry is built before any model is loaded)
        _attribute(b"\xef\xbb\xbf" + META.encode().replace(b"e3,bob,2", b"e3,bob,5"),
                   name="metadata label out of range (BOM file)", message=r"line 4: label 5 is out of range \[0, 3\)"),
        _attribute(META + "e1,carol,1\n", name="metadata duplicate example id",
                   message=r"line 5: duplicate example id 'e1' \(first on line 2\)"),
        _attribute(META.replace("contributor", "contribtor"), name="metadata without contributor column",
                   message=r"has no 'contributor' column \(did you mean 'contribtor'\?\)"),
        _attribute(META.encode().replace(b"bob", b"b\xf6b"), name="metadata not UTF-8",
                   message=r"meta\.csv line 4: byte 0xf6 is not UTF-8"),
        _attribute(META.replace("e2,alice,1", "e2,alice,one"), name="metadata label not an integer",
                   message=r"line 3: label 'one' is not an integer"),
        _attribute(META.replace("e2,alice,1", "e2,alice,\u00b2"), name="metadata label a superscript digit",
                   message=r"line 3: label '\u00b2' is not an integer"),
        _attribute('[{"example_id": "e1", "contributor": "alice", "label": 0}]\n', name="metadata JSON array",
                   message=r"meta\.json holds a JSON array; metadata is JSON Lines", meta_name="meta.json"),
        _attribute("", name="metadata empty", message=r"meta\.csv is empty"),
        _attribute('{"example_id": "e1", "contributor": "alice", "label": NaN}\n', name="metadata JSONL NaN label",
                   message=r"line 1: not valid JSON \(NaN is not a JSON value\)", meta_name="meta.jsonl"),
        _attribute('{"example_id": "e1", "contributor": ["a"], "label": 0}\n', name="metadata JSONL list contributor",
                   message=r"contributor \['a'\] is not a name", meta_name="meta.jsonl"),
        # ---- report and retrain
        Case("report without attribution.json", ["report", "--from", "{tmp}/run"], r"has no attribution\.json",
             out="run", keep={"x.txt": "x"}),
        Case("report of a corrupt attribution.json", ["report", "--from", "{tmp}/run"], r"is not valid JSON",
             out="run", keep={"attribution.json": "{"}),
        Case("report of an attribution.json with NaN", ["report", "--from", "{tmp}/run"],
             r"attribution\.json: holds NaN, which is not a JSON number", out="run",
             keep={"attribution.json": '{"method": "exact", "utilities": {"u": {"v_full": NaN}}}'}),
        Case("report of an attribution.json with 1e400", ["report", "--from", "{tmp}/run"],
             r"attribution\.json: holds 1e400, which overflows a float", out="run",
             keep={"attribution.json": '{"method": "exact", "utilities": {"u": {"v_full": 1e400}}}'}),
        Case("report of a document missing its keys", ["report", "--from", "{tmp}/run"],
             r"is not a valid attribution document \(\d+ problem\(s\)\): document: '\w+' is a required property",
             out="run", keep={"attribution.json": '{"method": "exact"}'}),
        Case("retrain coalitions missing", ["retrain", "--coalitions", "{tmp}/none.csv", "--out", "{tmp}/out"],
             r"coalitions file \S+none\.csv does not exist"),
        Case("retrain coalition mask 3", ["retrain", "--coalitions", "{tmp}/c.csv", "--out", "{tmp}/out"],
             r"line 2, column 'digit0_a': '3' is not 0 or 1",
             {"c.csv": "coalition," + ",".join(f"digit{d}_{x}" for d in range(10) for x in "ab") + "\n"
              + "s0," + ",".join(["3"] + ["0"] * 19) + "\n"}),
        Case("retrain over a corrupt retrain_settings.json", _RETRAIN, r"retraining settings file \S+retrain_settings"
             r"\.json is not valid JSON .* restore it, or give another --out folder", {"c.csv": _RETRAIN_ONE},
             keep={"retrain_settings.json": "{"}),
        Case("retrain over a retrain.csv without its coalition column", _RETRAIN,
             r"retraining results file \S+retrain\.csv has no 'coalition' column", {"c.csv": _RETRAIN_ONE},
             keep={"retrain_settings.json": '{"max_steps": null, "train_seed": null}\n', "retrain.csv": "a,b\n1,2\n"}),
        Case("retrain coalition name outside --out", ["retrain", "--coalitions", "{tmp}/c.csv", "--out", "{tmp}/out"],
             r"coalition name '\.\./escape' would not be a folder inside --out",
             {"c.csv": "coalition," + ",".join(f"digit{d}_{x}" for d in range(10) for x in "ab") + "\n"
              + "../escape," + ",".join(["1"] + ["0"] * 19) + "\n"}),
        Case("retrain --workers 0",
             ["retrain", "--coalitions", "{tmp}/none.csv", "--out", "{tmp}/out", "--workers", "0"],
             r"workers must be an integer of at least 1"),
        Case("retrain --setting artists with the digits' coalitions", [*_RETRAIN, "--setting", "artists"],
             r"coalitions file \S+c\.csv has no column for contributor\(s\) \['artist00', .*add one 0/1 column",
             {"c.csv": _RETRAIN_ONE}),
        Case("retrain --setting artists --max-steps 0", [*_RETRAIN, "--setting", "artists", "--max-steps", "0"],
             r"max_steps must be an integer of at least 1, got 0",
             {"c.csv": "coalition," + ",".join(f"artist{i:02d}" for i in range(40)) + "\n"
              + "s0," + ",".join(["1"] + ["0"] * 39) + "\n"}),
    ]
