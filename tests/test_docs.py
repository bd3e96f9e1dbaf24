"""The README and the pages under docs/ link only to files that exist and state no count that
conf/ contradicts: objectives, loss options, config-group options, parameter counts."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# [text](target) and ![alt](target); the target ends at the first space or closing parenthesis.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    targets = [match.group(1) for match in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    missing = [
        target for target in relative_links(page) if not (page.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_pages_have_links_to_check():
    assert len(PAGES) >= 5
    assert "docs/METHODS.md" in relative_links(ROOT / "README.md")


# --- the counts the pages state match the code ---------------------------------------------------

CONF = ROOT / "ssmri" / "conf"
TOP_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # docs/results/ holds archived sweeps
NUMBER_WORDS = dict(
    (word, value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
)
NUMBER_WORDS.update({f"twenty-{word}": 20 + NUMBER_WORDS[word] for word in list(NUMBER_WORDS)[1:10]})
BIG_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+")


def options(group: str) -> set[str]:
    return {path.stem for path in (CONF / group).glob("*.yaml")}


def tables(page: Path) -> list[list[list[str]]]:
    """Every Markdown table of a page, as rows of cells (header first, the --- row dropped)."""
    found, rows = [], []
    for line in [*page.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
            if not all(set(cell) <= set("-: ") for cell in cells):
                rows.append(cells)
        elif rows:
            found, rows = [*found, rows], []
    return found


def table_headed(page: Path, first: str, second: str) -> list[list[str]]:
    matches = [t for t in tables(page) if t[0][:2] == [first, second]]
    assert len(matches) == 1, f"{page.relative_to(ROOT)} should hold one table headed '{first} | {second}'"
    return matches[0]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_stated_number_of_training_objectives_is_the_number_of_loss_configs():
    claim = re.compile(r"\b(\d+|[a-z]+(?:-[a-z]+)?) training (?:objectives|methods)\b", re.IGNORECASE)
    stated = [
        (page.relative_to(ROOT), match.group(1))
        for page in TOP_PAGES
        for match in claim.finditer(page.read_text(encoding="utf-8"))
        if match.group(1).isdigit() or match.group(1).lower() in NUMBER_WORDS
    ]
    wrong = [
        (page, word)
        for page, word in stated
        if (int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]) != len(options("loss"))
    ]
    assert not wrong, f"conf/loss/ holds {len(options('loss'))} objectives; the pages say {wrong}"


def test_the_methods_table_lists_every_loss_config_with_the_file_of_its_class():
    rows = table_headed(ROOT / "README.md", "`loss=`", "method")[1:]
    names = [backticked(row[0])[0] for row in rows]
    assert sorted(names) == sorted(options("loss")), "README's methods table against ssmri/conf/loss/*.yaml"
    for name, row in zip(names, rows):
        target = re.search(
            r"^_target_: ssmri\.losses\.(\w+)$", (CONF / "loss" / f"{name}.yaml").read_text(), re.M
        )
        source = ROOT / "ssmri" / "losses" / backticked(row[-1])[0]
        assert target and source.exists(), f"loss={name}: no _target_ or no {source.name}"
        assert re.search(rf"^class {target.group(1)}\(", source.read_text(), re.M), (
            f"loss={name}: class {target.group(1)} is not in {source.name}"
        )


def test_the_configuration_table_lists_every_option_of_every_group():
    rows = table_headed(ROOT / "docs" / "running.md", "group", "options")[1:]
    # option names, not the `key=value` examples beside them
    groups = {
        backticked(row[0])[0]: {n for n in backticked(row[1]) if re.fullmatch(r"[\w-]+", n)} for row in rows
    }
    on_disk = {path.name for path in CONF.iterdir() if path.is_dir() and list(path.glob("*.yaml"))} - {
        "hydra"
    }
    assert on_disk | {"hydra/launcher"} <= set(groups), f"groups missing: {on_disk - set(groups)}"
    for group, listed in groups.items():
        if group == "loss":  # the methods table in the README lists them (tested above)
            continue
        assert listed == options(group), f"docs/running.md, group {group}: {sorted(listed ^ options(group))}"


@pytest.fixture(scope="module")
def parameter_counts() -> dict[str, tuple[int, int]]:
    """(U-Net, MoDL with its λ) parameter counts of the models the docs describe, built from conf/."""
    from hydra.utils import instantiate

    from tests.helpers.config import compose_only

    counts = {}
    for name, overrides in {
        "modl": [],
        "cpu_quick": ["experiment=cpu_quick"],
        "modl_ssibench": ["model=modl_ssibench"],
    }.items():
        model = instantiate(compose_only(overrides).model)
        total = sum(p.numel() for p in model.parameters())
        counts[name] = (sum(p.numel() for p in model.denoiser.parameters()), total)
    return counts


def quoted_parameter_counts() -> list[tuple[str, int, str]]:
    """(page, count, kind) for every count of six digits or more on a line that speaks of parameters
    or in a table's `params` column; kind is "total" where the text says MoDL's λ are included
    ("with MoDL's three λ", "in all") or the column is metrics.json's num_params, "U-Net" where it
    says the count is the U-Net's, "" where it does not say."""
    quoted = []
    for page in TOP_PAGES:
        name = str(page.relative_to(ROOT))
        for table in tables(page):
            if "params" in table[0]:
                column = table[0].index("params")
                quoted += [(name, int(row[column].replace(",", "")), "total") for row in table[1:]]
        for line in page.read_text(encoding="utf-8").splitlines():
            if line.startswith("|") or "param" not in line.lower():
                continue
            for match in BIG_NUMBER.finditer(line):
                clause = re.split(r"[;.,)]", line[match.end() :], maxsplit=1)[0]
                before = line[max(0, match.start() - 12) : match.start()]
                kind = "U-Net" if "U-Net" in clause or "U-Net" in before else ""
                kind = "total" if re.search(r"λ|ρ|in all", clause) else kind
                quoted.append((name, int(match.group().replace(",", "")), kind))
    return quoted


def test_every_quoted_parameter_count_is_a_model_built_from_the_config(parameter_counts):
    quoted = quoted_parameter_counts()
    assert quoted, "the pages quote parameter counts; none found"
    unets = {unet for unet, _ in parameter_counts.values()}
    totals = {total for _, total in parameter_counts.values()}
    allowed = {"total": totals, "U-Net": unets, "": unets | totals}
    wrong = [(page, count, kind) for page, count, kind in quoted if count not in allowed[kind]]
    assert not wrong, (
        f"built from conf/: U-Net {sorted(unets)}, with MoDL's λ {sorted(totals)}; pages: {wrong}"
    )


# --- the results pages quote the sweep reports they link to ---------------------------------------

BENCH = ROOT / "docs" / "results" / "cpu_bench"
SCENARIO_HEADINGS = {
    "noiseless": "## Noiseless (`make sweep SCENARIO=noiseless`)",
    "multicoil": "## Multi-coil (`make sweep SCENARIO=multicoil`)",
    "noisy": "## Noisy (`make sweep SCENARIO=noisy`)",
    "single": "## Single-operator (`make sweep SCENARIO=single`)",
}


def first_table_after(text: str, heading: str) -> dict[str, list[str]]:
    """``{method: cells}`` of the first markdown table below ``heading``."""
    lines = []
    for line in text[text.index(heading) :].splitlines()[1:]:
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]  # below the header
    return {row[0]: row[1:] for row in cells}


def report_rows(scenario: str) -> dict[str, dict]:
    import csv

    with open(BENCH / scenario / "results.csv", newline="") as handle:
        return {row["method"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("scenario", SCENARIO_HEADINGS)
def test_each_scenario_table_quotes_its_report(scenario):
    table = first_table_after((ROOT / "docs" / "results.md").read_text(), SCENARIO_HEADINGS[scenario])
    report = report_rows(scenario)
    assert list(table) == list(report)  # every method, in the report's order
    for method, cells in table.items():
        assert cells[0].split()[0] == f"{float(report[method]['psnr']):.2f}", method
        assert cells[1] == f"{float(report[method]['ssim']):.4f}", method


def test_the_readme_headline_is_the_noiseless_report_and_its_correlations():
    readme = (ROOT / "README.md").read_text()
    table = first_table_after(readme, "## Results")
    report = report_rows("noiseless")
    assert {m: c[0].split()[0] for m, c in table.items()} == {
        m: f"{float(r['psnr']):.2f}" for m, r in report.items()
    }
    full = (BENCH / "noiseless" / "results.md").read_text()
    rho, tau = re.search(r"Spearman ρ = ([0-9]+\.[0-9]+), Kendall τ-b = ([0-9]+\.[0-9]+)", full).groups()
    low, high = re.search(r"ρ in \[([0-9.]+), ([0-9.]+)\]", full).groups()
    assert f"Spearman ρ = {rho} [{low}, {high}]" in readme and f"Kendall τ-b = {tau}" in readme


@pytest.mark.parametrize("scenario", SCENARIO_HEADINGS)
def test_the_summary_quotes_each_reports_correlations_and_intervals(scenario):
    full = (BENCH / scenario / "results.md").read_text()
    rho, tau = re.search(r"Spearman ρ = ([0-9]+\.[0-9]+), Kendall τ-b = ([0-9]+\.[0-9]+)", full).groups()
    rho_low, rho_high, tau_low, tau_high = re.search(
        r"ρ in \[([0-9.]+), ([0-9.]+)\], τ-b in \[([0-9.]+), ([0-9.]+)\]", full
    ).groups()
    summary = first_table_after((ROOT / "docs" / "results.md").read_text(), "## Summary")
    assert summary[scenario][1] == f"{rho} [{rho_low}, {rho_high}]"
    assert summary[scenario][2] == f"{tau} [{tau_low}, {tau_high}]"


def test_the_ablation_page_quotes_every_generated_row():
    """docs/results/ablation.md shows the table and the published-order rows that
    ``python -m benchmarks.ablation`` wrote, each row unedited."""
    generated = (ROOT / "docs" / "results" / "ablation" / "ablation-table.md").read_text()
    page = (ROOT / "docs" / "results" / "ablation.md").read_text()
    rows = [line for line in generated.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) > 10
    missing = [row for row in rows if row not in page]
    assert not missing, missing


def test_the_robustness_section_quotes_its_report():
    """Each 'name R, σ: PSNR' quoted in the results page's robustness section is in the report."""
    section = (ROOT / "docs" / "results.md").read_text().split("## Robustness at test time")[1]
    section = section.split("\n## ")[0]
    import csv

    with open(BENCH / "robustness" / "robustness.csv", newline="") as handle:
        psnr = {
            (row["method"], float(row["acceleration"]), float(row["noise_std"])): f"{float(row['psnr']):.2f}"
            for row in csv.DictReader(handle)
        }
    quoted = re.findall(r"`([a-z_0-9]+)` at R = ([0-9]+), σ = ([0-9.]+): ([0-9]+\.[0-9]{2})", section)
    assert quoted, "the section quotes no number in the checkable form"
    for method, acceleration, noise, value in quoted:
        assert psnr[(method, float(acceleration), float(noise))] == value, (method, acceleration, noise)


def test_the_noisy_budget_quotes_its_1344_step_reports():
    """The noisy scenario's settled budget: τ-b from 672 to 1344 steps and ρ at 1344, as generated."""
    folder = BENCH / "noisy_1344_steps"
    stability = (folder / "stability.md").read_text()
    tau, low, high = re.search(
        r"\| noisy \| 672 \| 1344 \| 9 \| ([0-9.]+) \| \[([0-9.]+), ([0-9.]+)\]", stability
    ).groups()
    full = (folder / "results.md").read_text()
    rho = re.search(r"Spearman ρ = ([0-9]+\.[0-9]+)", full).group(1)
    rho_low, rho_high = re.search(r"ρ in \[([0-9.]+), ([0-9.]+)\]", full).groups()
    page = (ROOT / "docs" / "results.md").read_text()
    assert f"τ-b from 672 to 1344 steps is {tau} [{low}, {high}]" in page
    assert f"rises to {rho} [{rho_low}, {rho_high}] at 1344 steps" in page
