# Which original positions the bounded caches still hold at the end of the perplexity stream:
# histogram of token ages (stream length - 1 - original index) over all global layers and KV
# heads, sinks left out. Called by scripts/make-results.sh.
load dir.'/plot/panels.gp'
set terminal pngcairo size 700, 380*age_panels font "sans,9"
set output png
set termoption noenhanced
set multiplot layout age_panels, 1
set xlabel "token age at the end of the stream (tokens)"
set ylabel "share of non-sink slots"
set key outside right
set grid
set offsets 0, 0, graph 0.08, 0  # headroom: the window's flat bar would sit on the border
do for [p=1:age_panels] {
  f0 = age_first[p]
  set title age_title[f0]
  plot for [i=f0:f0 + age_count[p] - 1] age_file[i] using 1:2 with steps lw 2 title age_label[i]
}
unset multiplot
