"""``python -m ssmri.report <sweep_dir>``: rebuild the results table of a sweep directory."""

from ssmri.report.sweep import main

if __name__ == "__main__":
    main()
