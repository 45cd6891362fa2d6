from robustbench_bytes.cli import main

main()
