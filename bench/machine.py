"""One line naming the CPU a benchmark ran on, for bench/results/<run>/machine.txt and the run's
heading in BENCHMARKS.md (bench/report.py).

Cloud machines report only "AMD EPYC" or "Intel(R) Xeon(R) Processor" as the model name, which
hides what decides our kernels' speed: the same run gave 0.63 x on one and 0.82 x on another. So
the line adds the vendor's family / model (and the core generation where it is one we know), the
vector extensions the int8 and f32 kernels pick from, and the L2 size:

  AMD EPYC (family 25 model 17, Zen 4; AVX2, AVX-512, AVX-512 VNNI; L2 1 MB per core), 2 cores

  python bench/machine.py            the line for this machine
  python bench/machine.py --check    the parsing checked on known /proc/cpuinfo excerpts
"""
import os, pathlib, re, sys

# (vendor, family, first model, last model) -> core generation, for the CPUs these benchmarks
# ran on and their neighbours; anything else is named by family and model only.
GENERATIONS = [
    ("AuthenticAMD", 23, 0x00, 0x2F, "Zen / Zen+"),
    ("AuthenticAMD", 23, 0x30, 0x7F, "Zen 2"),
    ("AuthenticAMD", 25, 0x00, 0x0F, "Zen 3"),
    ("AuthenticAMD", 25, 0x10, 0x1F, "Zen 4"),
    ("AuthenticAMD", 25, 0x20, 0x5F, "Zen 3"),
    ("AuthenticAMD", 25, 0x60, 0x7F, "Zen 4"),
    ("AuthenticAMD", 25, 0xA0, 0xAF, "Zen 4c"),
    ("AuthenticAMD", 26, 0x00, 0xFF, "Zen 5"),
    ("GenuineIntel", 6, 85, 85, "Skylake-SP / Cascade Lake / Cooper Lake"),
    ("GenuineIntel", 6, 106, 106, "Ice Lake-SP"),
    ("GenuineIntel", 6, 143, 143, "Sapphire Rapids"),
    ("GenuineIntel", 6, 173, 173, "Granite Rapids"),
    ("GenuineIntel", 6, 207, 207, "Emerald Rapids"),
]

# cpuinfo flag -> name, in the order the kernels prefer them (src/model/int8/, fastmath.rs).
EXTENSIONS = [("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "AVX-512 VNNI"),
              ("avx_vnni", "AVX-VNNI"), ("amx_int8", "AMX")]


def field(cpuinfo, name):
    m = re.search(rf"^{name}\s*:\s*(.*)$", cpuinfo, re.M)
    return m.group(1).strip() if m else None


def size(text):
    """'1024K' / '2048 KB' / '4M' -> '1 MB', '2 MB', '4 MB' (sysfs and lscpu spellings)."""
    m = re.match(r"\s*(\d+)\s*([KMG])", text or "")
    if not m:
        return None
    kb = int(m.group(1)) * {"K": 1, "M": 1024, "G": 1024 * 1024}[m.group(2)]
    return f"{kb // 1024} MB" if kb % 1024 == 0 else f"{kb} KB"


def describe(cpuinfo, l2=None, cores=None):
    model = field(cpuinfo, "model name") or "unknown CPU"
    vendor, family, number = field(cpuinfo, "vendor_id"), field(cpuinfo, "cpu family"), field(cpuinfo, "model")
    flags = set((field(cpuinfo, "flags") or "").split())
    parts = []
    if family is not None and number is not None:
        fam, mod = int(family), int(number)
        gen = next((g for v, f, lo, hi, g in GENERATIONS if v == vendor and f == fam and lo <= mod <= hi), None)
        parts.append(f"family {fam} model {mod}" + (f", {gen}" if gen else ""))
    ext = [name for flag, name in EXTENSIONS if flag in flags]
    parts.append(", ".join(ext) if ext else "no AVX2")
    if l2_size := size(l2):
        parts.append(f"L2 {l2_size} per core")
    count = cores if cores is not None else len(re.findall(r"^processor\s*:", cpuinfo, re.M)) or os.cpu_count()
    return f"{model} ({'; '.join(parts)}), {count} cores"


def this_machine():
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    l2 = pathlib.Path("/sys/devices/system/cpu/cpu0/cache/index2/size")
    return describe(cpuinfo, l2.read_text() if l2.exists() else None, os.cpu_count())


def check():
    amd = ("processor : 0\nvendor_id : AuthenticAMD\ncpu family : 25\nmodel : 17\nmodel name : AMD EPYC\n"
           "flags : fpu avx avx2 avx512f avx512bw avx512_vnni\nprocessor : 1\n")
    intel = ("vendor_id : GenuineIntel\ncpu family : 6\nmodel : 207\nmodel name : Intel(R) Xeon(R) Processor\n"
             "flags : avx2 avx512f avx512_vnni avx_vnni\n")
    zen3 = "vendor_id : AuthenticAMD\ncpu family : 25\nmodel : 1\nmodel name : AMD EPYC\nflags : avx avx2\n"
    cases = [
        (describe(amd, "1024K"), "AMD EPYC (family 25 model 17, Zen 4; AVX2, AVX-512, AVX-512 VNNI; L2 1 MB per core), 2 cores"),
        (describe(intel, "4096K", 2), "Intel(R) Xeon(R) Processor (family 6 model 207, Emerald Rapids; AVX2, AVX-512, "
                                      "AVX-512 VNNI, AVX-VNNI; L2 4 MB per core), 2 cores"),
        (describe(zen3, "512K", 2), "AMD EPYC (family 25 model 1, Zen 3; AVX2; L2 512 KB per core), 2 cores"),
        (describe("model name : Mystery\nflags : sse2\n", None, 4), "Mystery (no AVX2), 4 cores"),
    ]
    bad = [(got, want) for got, want in cases if got != want]
    for got, want in bad:
        print(f"machine.py: got  {got}\n            want {want}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    check() if sys.argv[1:] == ["--check"] else print(this_machine())
