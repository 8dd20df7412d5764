# Perplexity along the stream (per position bucket), one panel per model and cache size, one
# line per policy. Called by scripts/make-results.sh.
load dir.'/plot/panels.gp'
set terminal pngcairo size 700, 380*ppl_panels font "sans,9"
set output png
set termoption noenhanced
set multiplot layout ppl_panels, 1
set xlabel "stream position (tokens)"
set ylabel "perplexity (bucket)"
set key outside right
set grid
do for [p=1:ppl_panels] {
  f0 = ppl_first[p]
  set title ppl_title[f0]
  plot for [i=f0:f0 + ppl_count[p] - 1] ppl_file[i] using 1:2 with linespoints pt 7 ps 0.5 title ppl_label[i]
}
unset multiplot
