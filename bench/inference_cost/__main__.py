from bench.inference_cost.run import main

if __name__ == "__main__":
    main()
