"""DeletedRoom: Pagecall rooms whose local rows were deleted, remembered while an attempt that
looks rooms up by name after an unknown outcome could still find them, so that none adopts one."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_pagecall', '0011_pendingaction_room_pk'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeletedRoom',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pagecall_id', models.CharField(max_length=64, unique=True, verbose_name='Pagecall id')),
                ('pagecall_created_at', models.DateTimeField(verbose_name='created at Pagecall')),
                ('deleted_at', models.DateTimeField(auto_now_add=True, verbose_name='deleted')),
            ],
            options={
                'verbose_name': 'deleted room',
            },
        ),
    ]
