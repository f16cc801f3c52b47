# Recurrent kernels: RNN, LSTM, GRU forward and BPTT (csrc/rnn.c, lstm.c, gru.c).
