module example.com/node-probe

go 1.22
