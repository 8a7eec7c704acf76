from bench.locomo_qa.cli import main

if __name__ == "__main__":
    main()
