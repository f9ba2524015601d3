print("kube-test-server: being written")
