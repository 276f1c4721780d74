set terminal pngcairo size 900,540 noenhanced
set grid
set output '/tmp/bench2/size-case1.png'
set title 'File size during the save: 1G ws=512M rate=10 random 1 vCPU file'
set xlabel 'seconds from the start of the save'
set ylabel 'MiB'
set key outside right
plot '/tmp/bench2/size-case1-fixed.dat' using 1:2 with lines lw 2 title 'fixed', '/tmp/bench2/size-case1-append.dat' using 1:2 with lines lw 2 title 'append', '/tmp/bench2/size-case1-qemu.dat' using 1:2 with lines lw 2 title 'qemu'
unset label 1
set output '/tmp/bench2/passes-case1.png'
set title 'Bytes written per pass: 1G ws=512M rate=10 random 1 vCPU file'
set xlabel 'pass'
set xtics 1
set ylabel 'MiB'
set key outside right
set logscale y
plot '/tmp/bench2/passes-case1-fixed.dat' using 1:2 with linespoints lw 2 title 'fixed', '/tmp/bench2/passes-case1-append.dat' using 1:2 with linespoints lw 2 title 'append'
unset logscale y
set output '/tmp/bench2/size-case2.png'
set title 'File size during the save: 1G ws=512M rate=50 random 1 vCPU file'
set xlabel 'seconds from the start of the save'
set ylabel 'MiB'
set key outside right
plot '/tmp/bench2/size-case2-fixed.dat' using 1:2 with lines lw 2 title 'fixed', '/tmp/bench2/size-case2-append.dat' using 1:2 with lines lw 2 title 'append', '/tmp/bench2/size-case2-qemu.dat' using 1:2 with lines lw 2 title 'qemu'
unset label 1
set output '/tmp/bench2/passes-case2.png'
set title 'Bytes written per pass: 1G ws=512M rate=50 random 1 vCPU file'
set xlabel 'pass'
set xtics 1
set ylabel 'MiB'
set key outside right
set logscale y
plot '/tmp/bench2/passes-case2-fixed.dat' using 1:2 with linespoints lw 2 title 'fixed', '/tmp/bench2/passes-case2-append.dat' using 1:2 with linespoints lw 2 title 'append'
unset logscale y
set output '/tmp/bench2/size-case3.png'
set title 'File size during the save: 1G ws=512M rate=200 random 1 vCPU file'
set xlabel 'seconds from the start of the save'
set ylabel 'MiB'
set key outside right
plot '/tmp/bench2/size-case3-fixed.dat' using 1:2 with lines lw 2 title 'fixed', '/tmp/bench2/size-case3-append.dat' using 1:2 with lines lw 2 title 'append', '/tmp/bench2/size-case3-qemu.dat' using 1:2 with lines lw 2 title 'qemu'
unset label 1
set output '/tmp/bench2/passes-case3.png'
set title 'Bytes written per pass: 1G ws=512M rate=200 random 1 vCPU file'
set xlabel 'pass'
set xtics 1
set ylabel 'MiB'
set key outside right
set logscale y
plot '/tmp/bench2/passes-case3-fixed.dat' using 1:2 with linespoints lw 2 title 'fixed', '/tmp/bench2/passes-case3-append.dat' using 1:2 with linespoints lw 2 title 'append'
unset logscale y
set output '/tmp/bench2/downtime.png'
set title 'Downtime against the guest dirty rate (every run)'
set xlabel 'guest dirty rate, pages/ms (as asked; unlimited: as measured)'
set ylabel 'downtime, ms'
set logscale y
set key outside right
plot '/tmp/bench2/downtime-fixed.dat' using 1:2 with points pt 7 ps 1.3 title 'fixed', '/tmp/bench2/downtime-append.dat' using 1:2 with points pt 7 ps 1.3 title 'append', '/tmp/bench2/downtime-qemu.dat' using 1:2 with points pt 7 ps 1.3 title 'qemu'
unset logscale y
